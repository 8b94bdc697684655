"""Feeding an executor from ``awe.tasks.<kind>``: a confluent-kafka consumer in a thread.

A task is read from committed records only: the orchestrator's transaction has committed the decision to
run it. Tasks finish out of order; ``AckTracker`` gives the finished prefix of each partition, whose offset
is what may be committed. How a result and its task's offset reach Kafka follows the guarantee:
- exactly-once: results and the offsets they answer go out in one transaction, a group commit of whatever
  finished since the last one. Once a result is visible its task is not delivered again, so a recorded AI
  answer is never paid for twice (except for a task finished ahead of an older one of its partition still
  running: offsets commit in order);
- at-least-once: a result is written plainly and visible at once, and its task's offset is committed after
  the result is durable. A worker dying between the two gets the task again; the orchestrator drops the
  second result, and only the side effect repeats.

librdkafka fetches on its own threads and parses outside the GIL; this thread hands batches to the event
loop, where the handlers run. Faust's agents cost about 1.5 ms more per hop. Under at-least-once the same
thread commits the offsets; under exactly-once a committer thread of its own starts a transaction as soon
as a task finishes, rather than when the consumer's poll returns, which cost a lone task 1 ms on average.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from agents.executors.base import Executor, Record, Source
from agents.executors.committer import Committer
from streams.acks import AckTracker, PartitionAcks
from streams.consuming import next_batch
from streams.delivery import DeliveryProducer
from streams.exceptions import ProduceError
from streams.settings import Settings
from streams.transactions import TransactionalWriter

log = logging.getLogger("awe.executor")

#: Records handed to the loop at once.
BATCH = 256
#: How long the idle consumer thread waits for a record before it checks whether to stop.
POLL_S = 0.2
#: The same while tasks are in flight under at-least-once, and while paused. Only the consumer's own thread
#: may commit (a call from another thread waits until no poll is running, which was never), so this bounds
#: how late a finished task's offset is committed under at-least-once, and how late a paused consumer
#: resumes. Under exactly-once the committer gathers this long after a transaction of several tasks.
BUSY_POLL_S = 0.002


def executor_group(settings: Settings, kind: str) -> str:
    """The consumer group of a kind's executors, one per kind so each scales and lags on its own."""
    return f"{settings.app_id}.executor.{kind}"


class TaskRunner:
    """Runs one executor's tasks: at most ``executor.concurrency`` at a time per worker.

    ``results`` writes results under at-least-once; under exactly-once the runner has a transactional
    producer of its own.
    """

    def __init__(self, settings: Settings, executor: Executor, results: DeliveryProducer | None) -> None:
        self.executor = executor
        group = executor_group(settings, executor.kind)
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": group,
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
        # Fenced by the group's generation (KIP-447), so the id only has to be unique to this runner.
        self.txn = (
            TransactionalWriter(settings, f"{group}-{uuid.uuid4().hex[:12]}", **{"linger.ms": 0})
            if settings.processing_guarantee == "exactly_once"
            else None
        )
        if self.txn is None and results is None:
            raise ValueError("an at-least-once runner needs a results producer")
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
        # Shared with the consumer thread, under the lock: offsets to commit by partition (at-least-once,
        # filled on the delivery thread); results not yet in a transaction (exactly-once); and how many
        # records were handed to the loop and are not finished yet.
        self._pending: dict[tuple[str, int], int] = {}
        self._done: list[tuple[PartitionAcks, int, Record | None]] = []
        self._outstanding = 0
        self._pending_lock = threading.Lock()
        # Exactly-once, under the commit lock: what a failed transaction held, tried again in the next.
        self._unsent: list[tuple[PartitionAcks, Record | None]] = []
        self._unsent_offsets: dict[tuple[str, int], tuple[PartitionAcks, int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._consume, name=f"awe-tasks-{executor.kind}", daemon=True)
        # Exactly-once: the committer thread and a revocation on the consumer thread take turns at the
        # transaction under the lock.
        self._commit_lock = threading.Lock()
        # Taken on the consumer thread at each assignment: called from the committer while the consumer
        # thread polled, ``consumer_group_metadata`` hung both (it keeps the GIL waiting on the poll).
        self._group_metadata: object | None = None
        self._committer = Committer(f"awe-txn-{executor.kind}", self._commit_done, gather_s=BUSY_POLL_S, idle_s=POLL_S)

    def start(self) -> None:
        """Join the group and start taking tasks; call on the event loop the handlers run on."""
        self._loop = asyncio.get_running_loop()
        self.consumer.subscribe([self.executor.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread.start()
        if self.txn is not None:
            self._committer.start()

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
        if self.txn is not None:
            self._committer.close()
            self._commit_done()
            self.txn.close()
        else:
            assert self.results is not None
            try:
                self.results.flush(grace)
            except ProduceError as err:  # their tasks stay uncommitted, and run again on the next owner
                log.warning("executor %s: %s", self.executor.kind, err)
            self._commit_pending(asynchronous=False)
        self.consumer.close()

    def _consume(self) -> None:
        loop = self._loop
        assert loop is not None
        paused = False
        while not self._stopping.is_set():
            if self._backlogged != paused:
                paused = self._backlogged
                (self.consumer.pause if paused else self.consumer.resume)(self.consumer.assignment())
            # Under exactly-once the committer has the finished tasks, so only a paused consumer polls briefly.
            busy = paused if self.txn is not None else self._commit_pending(asynchronous=True)
            batch = next_batch(self.consumer, BATCH, BUSY_POLL_S if busy else POLL_S)
            # Read after the poll: it ran the rebalance callbacks that preceded these records.
            generation = self.acks.generation
            records = [m for m in batch if _readable(m)]
            if records:
                with self._pending_lock:
                    self._outstanding += len(records)
                loop.call_soon_threadsafe(self._dispatch, generation, records)

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
                record = await self.executor.execute(source)
        except Exception:  # a bug of ours, not the handler's (those become failed results): skip the task
            log.exception("executor %s could not run %s/%s/%s", self.executor.kind, *_where(source))
            self._finished(acks, source.offset)
            return
        finally:
            self._taken -= 1
            if self._taken <= self._low:
                self._backlogged = False
        if self.txn is not None:
            with self._pending_lock:
                self._done.append((acks, source.offset, record))
            self._committer.wake()
            return
        assert self.results is not None
        self.results.send(
            record.topic,
            record.key,
            record.value,
            record.partition,
            on_delivered=lambda: self._finished(acks, source.offset),
        )

    def _finished(self, acks: PartitionAcks, offset: int) -> None:
        if self.txn is not None:  # nothing to write: the offset goes with the next transaction
            with self._pending_lock:
                self._done.append((acks, offset, None))
            self._committer.wake()
            return
        committable = self.acks.finish(acks, offset)
        with self._pending_lock:
            self._outstanding -= 1
            if committable is not None:
                self._pending[(acks.topic, acks.partition)] = committable

    def _commit_pending(self, *, asynchronous: bool) -> bool:
        """Commit the offsets finished since the last call; whether records are still outstanding."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
            outstanding = self._outstanding > 0
        if not pending:
            return outstanding
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in pending.items()]
        try:
            if asynchronous:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:  # revoked meanwhile: the new owner runs those tasks again
            log.warning("executor %s could not commit %s: %s", self.executor.kind, offsets, err)
        return outstanding

    def _commit_done(self) -> int:
        """Exactly-once: write what finished since the last call and commit its offsets, in one transaction.

        How many tasks the transaction answered (0 when there were none, or it was aborted).

        What a failed transaction held is tried again in the next one, less what belongs to partitions
        revoked meanwhile: their new owner runs those tasks again.
        """
        with self._commit_lock:
            return self._commit_under_lock()

    def _commit_under_lock(self) -> int:
        assert self.txn is not None
        with self._pending_lock:
            done, self._done = self._done, []
        for acks, offset, record in done:
            self._unsent.append((acks, record))
            committable = self.acks.finish(acks, offset)
            if committable is not None:
                self._unsent_offsets[(acks.topic, acks.partition)] = (acks, committable)
        if self._unsent:
            records = [
                (r.topic, r.key, r.value, r.partition) for acks, r in self._unsent if r is not None and acks.live
            ]
            offsets = [
                TopicPartition(acks.topic, acks.partition, offset)
                for acks, offset in self._unsent_offsets.values()
                if acks.live
            ]
            if not (records or offsets) or self.txn.commit(records, offsets, self._group_metadata):
                committed = len(self._unsent)
                with self._pending_lock:
                    self._outstanding -= committed
                self._unsent, self._unsent_offsets = [], {}
                return committed
        return 0

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            log.warning("executor %s: an offset commit failed: %s", self.executor.kind, err)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._group_metadata = consumer.consumer_group_metadata()
        self.acks.assign([(tp.topic, tp.partition) for tp in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # What finished is committed before the partitions go, or their next owner would run it again; under
        # exactly-once the committer waits meanwhile, so no transaction holds a revoked partition's offsets.
        if self.txn is not None:
            with self._commit_lock:
                self._commit_under_lock()
                self.acks.revoke([(tp.topic, tp.partition) for tp in partitions])
        else:
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
