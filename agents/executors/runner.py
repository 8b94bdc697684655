"""Feeding an executor from ``awe.tasks.<kind>``: a confluent-kafka consumer in a thread.

A task is read from committed records only: the orchestrator's transaction has committed the decision to
run it. Tasks finish out of order; ``AckTracker`` gives the finished prefix of each partition, whose offset
is what may be committed.

A result is written plainly, visible to the orchestrator as soon as it is durable, and its task's offset
is committed after that, whatever the orchestrator's guarantee: the orchestrator drops a duplicate result,
and a side effect is at-least-once in every workflow engine. What a transaction would add, that a task
whose result is on the log is never run again, comes from the resume point committed with each offset:
a new owner of a partition reads the results written since and skips the tasks answered there
(``streams/answered.py``). That also covers a task finished ahead of an older one still running, which a
transaction could not, since offsets commit in order. Without the transaction an AI call's hop is about
3 ms shorter, and an executor killed mid-commit holds no results partition up for the broker to abort it.

librdkafka fetches on its own threads and parses outside the GIL; this thread hands batches to the event
loop, where the handlers run, and commits the offsets. Faust's agents cost about 1.5 ms more per hop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from agents.executors.base import Executor, Source
from streams.acks import AckTracker, Commit, PartitionAcks
from streams.answered import output_starts, resume_metadata
from streams.consuming import next_batch
from streams.delivery import DeliveryProducer
from streams.exceptions import ProduceError
from streams.settings import Settings

log = logging.getLogger("awe.executor")

#: Records handed to the loop at once.
BATCH = 256
#: How long the idle consumer thread waits for a record before it checks whether to stop.
POLL_S = 0.2
#: The same while tasks are in flight, and while paused. Only the consumer's own thread may commit (a call
#: from another thread waits until no poll is running, which was never), so this bounds how late a
#: finished task's offset is committed, and how late a paused consumer resumes. A poll returns as soon as
#: a record arrives, so this does not delay tasks; each wake-up takes the GIL from the event loop, though:
#: at 2 ms, 64 clients ran 5% fewer runs/s, less steadily (docs/benchmarks.md).
BUSY_POLL_S = 0.01


def executor_group(settings: Settings, kind: str) -> str:
    """The consumer group of a kind's executors, one per kind so each scales and lags on its own."""
    return f"{settings.app_id}.executor.{kind}"


class TaskRunner:
    """Runs one executor's tasks: at most ``executor.concurrency`` at a time per worker.

    ``on_fatal`` is called on the event loop if the consumer thread dies: the worker must stop, or its
    partitions would stay assigned to an executor that takes no more tasks.
    """

    def __init__(
        self,
        settings: Settings,
        executor: Executor,
        results: DeliveryProducer,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.settings = settings
        self.executor = executor
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": executor_group(settings, executor.kind),
                "enable.auto.commit": False,
                "on_commit": self._on_commit,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": int(settings.session_timeout_s * 1000),
                "heartbeat.interval.ms": int(min(3.0, settings.session_timeout_s / 3) * 1000),
                "max.partition.fetch.bytes": settings.record_max_bytes,
            }
        )
        self.results = results
        self.on_fatal = on_fatal
        self.acks = AckTracker()
        # Past ``high`` tasks taken, the partitions pause until the backlog is down to ``low``; the rest
        # stays in Kafka rather than in this process's memory.
        self._low = executor.concurrency
        self._high = executor.concurrency * 2
        self._slots = asyncio.Semaphore(executor.concurrency)
        self._taken = 0
        # Set on the loop, applied by the consumer thread: a pause from another thread than the one
        # polling deadlocked (the call keeps the GIL while librdkafka waits on the polling thread).
        self._backlogged = False
        self._jobs: set[asyncio.Task[None]] = set()
        # Shared with the consumer thread, under the lock: commits by partition (filled on the delivery
        # thread), and how many records were handed to the loop and are not finished yet.
        self._pending: dict[tuple[str, int], Commit] = {}
        self._outstanding = 0
        self._pending_lock = threading.Lock()
        # One asynchronous commit at a time. The group coordinator answers a connection's requests in turn,
        # and the consumer's heartbeats queue behind its commits: a commit on every poll once queued so
        # many after a burst of tasks that no heartbeat was answered for 10 s; the session timed out, and
        # every run waited ~20 s for the group to rebalance. Offsets that finish meanwhile go in the next one.
        self._committing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._consume, name=f"awe-tasks-{executor.kind}", daemon=True)

    def start(self) -> None:
        """Join the group and start taking tasks; call on the event loop the handlers run on."""
        self._loop = asyncio.get_running_loop()
        self.consumer.subscribe([self.executor.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread.start()

    async def stop(self, grace: float) -> None:
        """Stop taking tasks, give those running ``grace`` seconds, commit what finished, leave the group.

        A task still running after that is cancelled and left uncommitted: the next owner runs it again.
        """
        self._stopping.set()
        await asyncio.to_thread(self._thread.join)
        if self._jobs:
            _, late = await asyncio.wait(set(self._jobs), timeout=grace)
            for job in late:
                job.cancel()
        await asyncio.to_thread(self._close, grace)

    def _close(self, grace: float) -> None:
        try:
            self.results.flush(grace)
        except ProduceError as err:  # their tasks stay uncommitted, and run again on the next owner
            log.warning("executor %s: %s", self.executor.kind, err)
        self._commit_pending(asynchronous=False)
        self.consumer.close()

    def _consume(self) -> None:
        loop = self._loop
        assert loop is not None
        try:
            self._consume_until_stopped(loop)
        except BaseException as err:
            log.critical("executor %s: its consumer thread died", self.executor.kind, exc_info=True)
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.on_fatal, err)

    def _consume_until_stopped(self, loop: asyncio.AbstractEventLoop) -> None:
        paused = False
        while not self._stopping.is_set():
            if self._backlogged != paused:
                paused = self._backlogged
                if paused:
                    self.consumer.pause(self.consumer.assignment())
                else:
                    self._resume()
            busy = self._commit_pending(asynchronous=True)
            batch = next_batch(self.consumer, BATCH, BUSY_POLL_S if busy or paused else POLL_S)
            # Read after the poll: it ran the rebalance callbacks that preceded these records.
            generation = self.acks.generation
            records = [m for m in batch if _readable(m)]
            if records:
                with self._pending_lock:
                    self._outstanding += len(records)
                loop.call_soon_threadsafe(self._dispatch, generation, records)

    def _resume(self) -> None:
        """Resume the paused partitions, and have librdkafka fetch them now rather than on its next wake-up.

        A pause drops the records fetched ahead, and a resume alone left the partitions unfetched until the
        broker thread next woke on its own: a saturated executor (a 10-way fan-out at 64 clients, 32 tasks
        at a time) then idled up to 0.75 s after each resume with its tasks waiting in Kafka, and ran half
        the runs/s (docs/benchmarks.md). A seek to where each partition stands restarts its fetch at once.
        """
        assignment = self.consumer.assignment()
        self.consumer.resume(assignment)
        for position in self.consumer.position(assignment):
            if position.offset < 0:
                continue  # nothing taken from it yet: it is fetched from its committed offset, if later
            try:
                self.consumer.seek(position)
            except KafkaException as err:  # refused (mid offset reset, say): the fetch resumes on its own, later
                log.warning("executor %s could not restart the fetch of %s: %s", self.executor.kind, position, err)

    def _dispatch(self, generation: int, records: list[Message]) -> None:
        for message in records:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            acks = self.acks.take(topic, partition, offset, generation)
            if acks is None:
                with self._pending_lock:
                    self._outstanding -= 1
                continue
            self._taken += 1
            source = Source(topic, partition, offset, message.key(), message.value() or b"")
            job = asyncio.ensure_future(self._run(source, acks))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
        if self._taken >= self._high:
            self._backlogged = True

    async def _run(self, source: Source, acks: PartitionAcks) -> None:
        try:
            async with self._slots:
                record = await self.executor.execute(source, answered=acks.answered)
        except Exception:  # a bug of ours, not the handler's (those become failed results): skip the task
            log.exception("executor %s could not run %s/%s/%s", self.executor.kind, *_where(source))
            self._finished(acks, source.offset, None)
            return
        finally:
            self._taken -= 1
            if self._taken <= self._low:
                self._backlogged = False
        if record is None:  # answered by the partition's previous owner
            self._finished(acks, source.offset, None)
            return
        is_result = record.topic == self.executor.results
        self.results.send(
            record.topic,
            record.key,
            record.value,
            record.partition,
            on_delivered=lambda written: self._finished(acks, source.offset, written if is_result else None),
        )

    def _finished(self, acks: PartitionAcks, offset: int, result: int | None) -> None:
        commit = self.acks.finish(acks, offset, result)
        with self._pending_lock:
            self._outstanding -= 1
            if commit is not None:
                self._pending[(acks.topic, acks.partition)] = commit

    def _commit_pending(self, *, asynchronous: bool) -> bool:
        """Commit the offsets finished since the last call; whether records are still outstanding."""
        with self._pending_lock:
            if asynchronous and self._committing:
                return True
            pending, self._pending = self._pending, {}
            outstanding = self._outstanding > 0
        if not pending:
            return outstanding
        offsets = [
            TopicPartition(topic, partition, commit.offset, metadata=resume_metadata(commit.resume))
            for (topic, partition), commit in pending.items()
        ]
        try:
            if asynchronous:
                self.consumer.commit(offsets=offsets, asynchronous=True)
                self._committing = True
            else:
                self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:  # revoked meanwhile: the new owner runs those tasks again
            log.warning("executor %s could not commit %s: %s", self.executor.kind, offsets, err)
        return outstanding

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self._committing = False
        if err is not None:
            log.warning("executor %s: an offset commit failed: %s", self.executor.kind, err)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        starts = output_starts(self.settings, consumer, partitions, self.executor.results)
        found = sum(len(start.answered) for start in starts.values())
        if found:
            log.info("executor %s: %d results past the previous owners' resume points", self.executor.kind, found)
        self.acks.assign([(tp.topic, tp.partition) for tp in partitions], starts)
        # A partition nobody committed yet gets its resume point now. Its first commit otherwise came only
        # once a task finished, asynchronously: a worker killed between a result and that commit left its
        # successor no floor, and an answered AI call was made again.
        first = [
            TopicPartition(topic, partition, start.first, metadata=resume_metadata(start.end))
            for (topic, partition), start in starts.items()
            if start.first is not None
        ]
        if first:
            consumer.commit(offsets=first, asynchronous=False)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # What finished is committed before the partitions go, or their next owner would run it again.
        self._commit_pending(asynchronous=False)
        self.acks.revoke([(tp.topic, tp.partition) for tp in partitions])


def _readable(message: Message) -> bool:
    err = message.error()
    if err is None:
        return True
    log.warning("task consumer: %s", err)
    return False


def _where(source: Source) -> tuple[str, int, int]:
    return source.topic, source.partition, source.offset
