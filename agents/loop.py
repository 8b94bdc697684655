"""The orchestrator on librdkafka: one consumer and one producer in a thread of their own.

The same steps as the Faust agent (``agents/steps.py``), read and written with confluent-kafka. A batch of
records is one Kafka transaction under exactly-once, from one producer per worker, with the input offsets
sent with the consumer group's metadata (KIP-447, Kafka Streams' exactly-once v2): a worker that lost its
partitions can no longer commit, whatever its transactional id. Faust's agent ends one transaction per
source partition on each commit, and its client does the protocol work in Python; here librdkafka's
threads do it outside the GIL (docs/benchmarks.md measures both).

Run states are the same changelog as the Faust table's (``<app_id>-runs-changelog``), restored for the
partitions the worker gains; a transaction that has to be abandoned restores them again, so the store
always matches what was committed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from agents.metrics import PRODUCER_ERRORS
from agents.steps import Outgoing, Read, Record, Steps
from agents.timers import TimerWheel
from schemas.state import RunState
from schemas.tasks import TimerFired
from streams.app import stored_state
from streams.codec import encode
from streams.consuming import BOUNDED_READ, assign, next_batch
from streams.exceptions import ProduceError
from streams.producer import RecordProducer, producer_config
from streams.registry import DefinitionRegistry
from streams.runstore import SpillingRuns
from streams.settings import Settings
from streams.topics import Catalog, Role

log = logging.getLogger("awe.orchestrator")

#: Records taken into one transaction at most.
BATCH = 2000
#: How long an idle loop waits for a record before it fires due timers and checks whether to stop.
POLL_S = 0.02
#: A worker killed mid-transaction holds its partitions' readers at that transaction until the broker
#: aborts it after this long (its successor has another transactional id); Kafka Streams uses 10 s too.
TRANSACTION_TIMEOUT_MS = 10_000
#: librdkafka retries a request refused with CONCURRENT_TRANSACTIONS (the last transaction's markers are
#: still being written) after this long, doubling each time; at its default of 100 ms a step's p99 was ~130 ms.
RETRY_BACKOFF_MS = 5
#: Every batch ends in a flush (at-least-once) or a commit (exactly-once), which sends what waits at once:
#: lingering batches a batch's records into fewer requests and delays none of them.
BATCH_LINGER_MS = 5
#: How long a transaction stays open for records that keep arriving (exactly-once) before it commits. At
#: 64 clients 20 ms gave 15-25 % more runs/s than committing every batch (docs/benchmarks.md).
TRANSACTION_WINDOW_S = 0.02
#: How long a call to the broker in the loop (a commit, a restore) may take before the loop gives up.
CALL_TIMEOUT_S = 30.0


class OrchestratorLoop:
    """Reads ``awe.commands`` and ``awe.results``, decides, writes; one batch at a time, in its own thread.

    ``on_ready`` is called (on the loop's thread) once the first partitions are restored; ``on_fatal`` if
    the thread dies, since a worker that keeps its partitions but no longer processes them stalls them.
    """

    def __init__(
        self,
        settings: Settings,
        registry: DefinitionRegistry,
        on_ready: Callable[[], None],
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.on_ready = on_ready
        self.on_fatal = on_fatal
        catalog = Catalog(settings)
        self.sources = [catalog.name(Role.COMMANDS), catalog.name(Role.RESULTS)]
        self.results = catalog.name(Role.RESULTS)
        self.changelog = catalog.run_states()
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self.runs = SpillingRuns()
        self.wheel = TimerWheel()
        self.steps = Steps(settings, lambda: self.runs, self.wheel)
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": settings.app_id,
                "enable.auto.commit": False,
                "on_commit": self._on_commit,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # A run's commands and results must reach the same worker: the range assignor gives each
                # member the same partition numbers of every topic it subscribes to (co-partitioning).
                "partition.assignment.strategy": "range",
                "session.timeout.ms": int(settings.session_timeout_s * 1000),
                "heartbeat.interval.ms": int(min(3.0, settings.session_timeout_s / 3) * 1000),
                "max.partition.fetch.bytes": settings.record_max_bytes,
            }
        )
        if self.exactly_once:
            overrides: dict[str, object] = {
                "transactional.id": f"{settings.app_id}-orchestrator-{uuid.uuid4().hex}",
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                "retry.backoff.ms": RETRY_BACKOFF_MS,
            }
        else:
            overrides = {}
        self.producer = Producer(producer_config(settings, **{"linger.ms": BATCH_LINGER_MS, **overrides}))
        self._timers = RecordProducer(settings)
        self._failed: list[str] = []
        self._pending: dict[tuple[str, int], int] = {}
        self._committing = False
        self._ready = False
        #: The input offsets of the open transaction (exactly-once), None when none is open.
        self._txn_offsets: dict[tuple[str, int], int] | None = None
        #: The store holds states that were not committed (writes abandoned): restore before going on.
        self._stale = False
        #: The partitions whose run states the store holds.
        self._restored: set[int] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name="awe-orchestrator", daemon=True)

    def start(self) -> None:
        """Join the group and start processing in the loop's thread."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the batch in hand, leave the group and close the clients (blocks until done)."""
        self._stopping.set()
        self._thread.join()

    def _main(self) -> None:
        try:
            if self.exactly_once:
                self.producer.init_transactions(CALL_TIMEOUT_S)
            self.consumer.subscribe(
                self.sources, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            while not self._stopping.is_set():
                self._fire_timers()
                if self._stale:
                    self._recover()
                batch = [m for m in next_batch(self.consumer, BATCH, POLL_S) if _readable(m)]
                if batch and not self._stale:
                    self._process(batch)
            self._commit_offsets(asynchronous=False)
            self.consumer.close()
            self.producer.flush(CALL_TIMEOUT_S)
            self._timers.close()
        except BaseException as err:
            log.critical("the orchestrator's thread died", exc_info=True)
            self.on_fatal(err)

    def _process(self, batch: list[Message]) -> None:
        if not self.exactly_once:
            offsets: dict[tuple[str, int], int] = {}
            self._decide(batch, offsets)
            self._flush_then_commit(offsets)
            return
        self._begin()
        started = time.monotonic()
        while True:
            assert self._txn_offsets is not None
            self._decide(batch, self._txn_offsets)
            if time.monotonic() - started >= TRANSACTION_WINDOW_S:
                break
            # What arrived meanwhile joins the open transaction: under load a commit's round trips were half
            # of every cycle. With nothing waiting the transaction commits at once, so a lone step waits for
            # no window.
            batch = [m for m in next_batch(self.consumer, BATCH, 0) if _readable(m)]
            if not batch:
                break
            if self._txn_offsets is None:  # a rebalance in that poll committed the transaction (or lost it)
                if self._stale:
                    return
                self._begin()
                started = time.monotonic()
        self._end()

    def _decide(self, batch: list[Message], offsets: dict[tuple[str, int], int]) -> None:
        now = time.time()
        for message in batch:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            offsets[(topic, partition)] = offset + 1
            record = Record(topic, partition, offset, message.key(), message.value())
            read = self.steps.read(record, now, self.registry.get)
            if isinstance(read, Read):
                found = self.registry.resolve(*read.unresolved) if read.unresolved is not None else None
                step = self.steps.decide(read, found)
            else:
                step = read
            for out in step.records:
                self._produce(out)

    def _produce(self, out: Outgoing) -> None:
        while True:
            try:
                self.producer.produce(
                    out.topic, out.value, out.key, partition=out.partition, on_delivery=self._on_delivery
                )
                return
            except BufferError:  # the client's queue is full (a batch of wide fan-outs): let it send some
                self.producer.poll(0.05)

    def _begin(self) -> None:
        self.producer.begin_transaction()
        self._txn_offsets = {}

    def _end(self) -> None:
        """Commit the open transaction with its input offsets; if it has to be abandoned, mark the store stale."""
        offsets, self._txn_offsets = self._txn_offsets, None
        if offsets is None:
            return
        positions = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
        try:
            self.producer.send_offsets_to_transaction(
                positions, self.consumer.consumer_group_metadata(), CALL_TIMEOUT_S
            )
            self.producer.commit_transaction(CALL_TIMEOUT_S)
        except KafkaException as err:
            error: KafkaError = err.args[0]
            if error.fatal() or not error.txn_requires_abort():
                raise
            # Fenced by a rebalance, or refused: nothing of the transaction was committed. The store holds its
            # states, so it is restored from the changelog and the records read again.
            log.warning("the orchestrator's transaction was abandoned: %s", error)
            self.producer.abort_transaction(CALL_TIMEOUT_S)
            self._stale = True

    def _flush_then_commit(self, offsets: dict[tuple[str, int], int]) -> None:
        remaining = self.producer.flush(CALL_TIMEOUT_S)
        if remaining or self._failed:
            reason = self._failed[0] if self._failed else f"{remaining} records not delivered"
            self._failed.clear()
            PRODUCER_ERRORS.labels("orchestrator").inc()
            log.warning("the orchestrator's writes failed (%s): reading the batch again", reason)
            self._stale = True
            return
        self._pending.update(offsets)
        self._commit_offsets(asynchronous=True)

    def _commit_offsets(self, *, asynchronous: bool) -> None:
        # One asynchronous commit at a time: the coordinator answers a connection's requests in turn, and a
        # commit per batch kept heartbeats waiting until the session timed out (agents/executors/runner.py).
        if not self._pending or (asynchronous and self._committing):
            return
        positions = [TopicPartition(t, p, o) for (t, p), o in self._pending.items()]
        self._pending = {}
        try:
            if asynchronous:
                self.consumer.commit(offsets=positions, asynchronous=True)
                self._committing = True
            else:
                self.consumer.commit(offsets=positions, asynchronous=False)
        except KafkaException as err:  # revoked meanwhile: the next owner reads those records again
            log.warning("the orchestrator could not commit %s: %s", positions, err)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self._committing = False
        if err is not None:
            log.warning("an offset commit of the orchestrator failed: %s", err)

    def _on_delivery(self, err: KafkaError | None, message: Message) -> None:
        if err is not None:
            self._failed.append(str(err))

    def _recover(self) -> None:
        """Put the store and the consumer back where the last commit left them."""
        self._stale = False
        assignment = self.consumer.assignment()
        self.runs.clear()
        self._restore(sorted(self._restored))
        committed = self.consumer.committed(assignment, timeout=CALL_TIMEOUT_S)
        self._rebuild_wheel()
        for position in committed:
            self.consumer.seek(
                TopicPartition(position.topic, position.partition, max(position.offset, OFFSET_BEGINNING))
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # A rebalance revokes every partition, then assigns. The states of a partition that comes back are
        # still current: nobody else owned it in between, or this worker would have been assigned without it.
        assigned = {tp.partition for tp in partitions}
        self.runs.forget_partitions_except(assigned)
        gained = sorted(assigned - self._restored)
        self._restored = assigned
        if gained:
            self._restore(gained)
        self._rebuild_wheel()
        if not self._ready:
            self._ready = True
            self.on_ready()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._end()
        self._commit_offsets(asynchronous=False)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group moved on without this worker (its session timed out): others may have owned these
        # partitions since, so their states here are stale, and an open transaction can no longer commit.
        if self._txn_offsets is not None:
            self._txn_offsets = None
            self.producer.abort_transaction(CALL_TIMEOUT_S)
        self._stale = False
        self._pending.clear()
        self._restored = set()
        self.runs.clear()
        self.wheel.rebuild([])

    def _restore(self, partitions: list[int]) -> None:
        """Read the changelog of ``partitions`` to its end into the store (a tombstone deletes its run)."""
        started = time.monotonic()
        reader = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"{self.settings.app_id}-restore",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "max.partition.fetch.bytes": self.settings.record_max_bytes,
                # The broker holds a fetch of a partition with nothing more to read for this long: at the
                # default (500 ms) restoring three empty partitions took 1 s.
                "fetch.wait.max.ms": 10,
                **BOUNDED_READ,
            }
        )
        restored = 0
        try:
            assign(reader, [TopicPartition(self.changelog, p, OFFSET_BEGINNING) for p in partitions])
            open_partitions = set(partitions)
            while open_partitions:
                batch = next_batch(reader, 5000, CALL_TIMEOUT_S)
                if not batch:
                    raise TimeoutError(f"the runs changelog did not answer within {CALL_TIMEOUT_S} s")
                items: list[tuple[bytes, RunState | bytes, int]] = []
                for message in batch:
                    err = message.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            open_partitions.discard(message.partition() or 0)
                            continue
                        raise KafkaException(err)
                    key, value, partition = message.key(), message.value(), message.partition()
                    assert key is not None and partition is not None
                    if value is None:
                        self.runs.pop(key, None)
                        continue
                    items.append((key, stored_state(RunState.model_validate_json(value), value), partition))
                    restored += 1
                self.runs.put_many(items)
        finally:
            reader.close()
        log.info("restored %d run states of partitions %s in %.2f s", restored, partitions, time.monotonic() - started)

    def _rebuild_wheel(self) -> None:
        states = [v for v in self.runs.live_values() if isinstance(v, RunState)]
        self.wheel.rebuild(states)

    def _fire_timers(self) -> None:
        due = self.wheel.pop_due(time.time())
        if not due:
            return
        for run_id, tenant_id, timer_id in due:
            fired = TimerFired(run_id=run_id, tenant_id=tenant_id, timer_id=timer_id, fired_at=time.time())
            self._timers.produce(self.results, run_id, encode(fired))
        try:
            self._timers.flush(CALL_TIMEOUT_S)
        except ProduceError as err:
            # The timers stay in the runs' state: the wheel is rebuilt from it and fires them again.
            PRODUCER_ERRORS.labels("timers").inc()
            log.warning("timers not delivered, armed again: %s", err)
            self._rebuild_wheel()


def _readable(message: Message) -> bool:
    err = message.error()
    if err is None:
        return True
    log.warning("orchestrator consumer: %s", err)
    return False
