"""Latency fixes to Faust's aiokafka consumer and transactional commits that neither library exposes.

Both were found with the engine benchmark (``benchmarks/engine.py``); each comment says what it cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.structs import TopicPartition
from faust.tables import recovery as faust_recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message
from mode.services import ServiceTask

from streams.writer import commit_gate

# aiokafka stops fetching from a broker for ``prefetch_backoff`` (100 ms) while any partition led by it
# still has unconsumed records. Faust drains the buffer from another thread, so on a single broker every
# step of every run waited up to 100 ms; measured step p50 fell from ~60 ms to a few ms with 2 ms here.
# Neither Faust nor AIOKafkaConsumer exposes the setting, hence the default is changed.
PREFETCH_BACKOFF_S = 0.002

# The Fetcher leaves partitions that still hold unconsumed records out of its next fetch request and sends
# no second request to a broker while one is in flight. Faust hard-codes ``fetch_max_wait_ms=1500``, so
# once a fetch went out with only quiet partitions (under load: the commands topic, while the results and
# tasks partitions waited for the main thread to drain them) the broker held it for 1.5 s and every run's
# next step with it: at 64 closed-loop clients the worker idled at ~20 % CPU and fell from ~77 to ~10 runs/s
# (step p50 1.6 s). A short long poll bounds that stall. 100 ms still left a 10-way fan-out at one client
# waiting ~100 ms per run (7.7 against 15.0 runs/s, measured A/B); at 20 ms an idle worker sends ~50
# fetches/s, which costs nothing measurable.
FETCH_MAX_WAIT_MS = 20

_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def _create_worker_consumer_with_short_poll(self: Any, transport: Any) -> Any:
    consumer = _create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start() to build its Fetcher
    return consumer


# Under exactly-once Faust keeps one transactional producer per partition and, at every commit, ends their
# transactions one after another (AddOffsetsToTxn, TxnOffsetCommit, EndTxn: three round trips each). With
# 6 partitions a commit took 100-300 ms, and every hop waits for the commit of the step before it. The
# producers are independent (each has its own lock), so their commits can run at the same time.
async def _commit_transactions_concurrently(
    self: Any,
    tid_to_offset_map: Mapping[str, Mapping[TopicPartition, int]],
    group_id: str,
    start_new_transaction: bool = True,
) -> None:
    async def commit_one(transactional_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        async with self._trn_locks[transactional_id]:
            producer = self._transaction_producers.get(transactional_id)
            if producer is None:
                return
            await producer.send_offsets_to_transaction(offsets, group_id)
            await producer.commit_transaction()
            if start_new_transaction:
                await producer.begin_transaction()

    await asyncio.gather(*(commit_one(tid, offsets) for tid, offsets in tid_to_offset_map.items()))


# Under exactly-once what a hop writes becomes visible only when its transaction commits. Faust commits on a
# fixed timer, and every hop of every run is phase-locked to that timer: the executor's answer, written a few
# ms after a commit, waits for the next one, and so does the orchestrator's next step. An http step (two
# hops) took two full intervals, ~220 ms at the 100 ms default, while a commit itself takes ~5-10 ms.
# Committing after every record instead collapses throughput: a commit blocks processing (see
# ``commit_gate``) and, under load, takes tens of ms. So the worker commits as Kafka Streams would like to:
# as soon as it goes idle (no acknowledgement for ``COMMIT_QUIET_S``), and otherwise once the oldest
# uncommitted acknowledgement is ``commit_interval`` old. A lone run's hop then waits for a few ms and one
# commit; a busy worker commits one batch per interval, as before. Under at-least-once the commit does
# not gate visibility, and Faust's interval commit stays.
COMMIT_QUIET_S = 0.003

# When the last commit carried a single acknowledgement, traffic is most likely one run at a time, and that
# run's next record waits for this very commit: the quiet wait is this much shorter one instead. Measured:
# 2-3 ms off a lone step and an AI call, and within the noise under load (docs/benchmarks.md).
LONE_QUIET_S = 0.0005

# An acknowledgement the commit did not take (it came while the commit ran, or Faust's bookkeeping held it
# back) is committed after this long rather than a whole interval later.
COMMIT_RETRY_S = 0.002

# Faust notes the offsets skipped before a record it reads (transaction markers, compacted records) as a gap
# its commits may step over, but the gap it notes also covers the record's own offset. When that record is
# acknowledged, the gap left below it by the record before (kept for the same reason) turns the commit's
# arithmetic back to the offset already committed, so nothing is committed until a retry: under
# exactly-once every other step of a lone run waited ~5 ms more for its commit. The gap ends before the record.
_original_add_gap = faust_consumer.Consumer._add_gap


async def _add_gap_before_record(self: Any, tp: TopicPartition, offset_from: int, offset_to: int) -> None:
    await _original_add_gap(self, tp, offset_from, offset_to - 1)


# A transaction that follows another at once is answered CONCURRENT_TRANSACTIONS while the broker still
# writes the last one's markers (a millisecond or two), and aiokafka retries AddOffsetsToTxn and
# TxnOffsetCommit only after ``retry_backoff_ms``, 100 ms by default, which Faust does not expose: such a
# commit took ~110 ms instead of ~3. aiokafka's backoff is constant, so this stays above a spin.
PRODUCER_RETRY_BACKOFF_MS = 5

_original_producer_settings = faust_aiokafka.Producer._settings_default


def _producer_settings_with_short_backoff(self: Any) -> Mapping[str, Any]:
    return {**_original_producer_settings(self), "retry_backoff_ms": PRODUCER_RETRY_BACKOFF_MS}


_original_ack = faust_consumer.Consumer.ack
_original_commit_handler = faust_consumer.Consumer._commit_handler


def _ack_and_wake_committer(self: Any, message: Message) -> bool:
    acked: bool = _original_ack(self, message)
    if acked:
        wake: asyncio.Event | None = getattr(self, "_awe_commit_wake", None)
        if wake is not None:
            wake.set()
    return acked


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _commit_when_idle(self: Any) -> None:
    if not self.in_transaction:
        await _original_commit_handler(self)
        return
    wake = self._awe_commit_wake = asyncio.Event()
    gate = commit_gate(self.app)
    loop = asyncio.get_running_loop()
    interval: float = self.commit_interval
    lone = False
    while not self.should_stop:
        # The timeout is a safety net: every commit path still runs at least once per interval.
        await _wait(wake, interval)
        deadline = loop.time() + interval
        quiet = LONE_QUIET_S if lone else COMMIT_QUIET_S
        wakes = 1
        while loop.time() < deadline:
            wake.clear()
            if not await _wait(wake, min(quiet, max(0.0, deadline - loop.time()))):
                break  # idle: nothing was acknowledged for a moment
            wakes += 1
        lone = wakes == 1
        wake.clear()
        async with gate:
            await self.commit()
        if any(self._acked.values()):
            await asyncio.sleep(COMMIT_RETRY_S)
            wake.set()


# Faust hands each fetched record to the streams through ``Service.wait_first``: four tasks, an
# ``asyncio.wait`` and three cancellations per record, so the drain moves one record per turn of the event
# loop or two. Under load a turn runs everything else that is ready (HTTP calls, producer I/O, commits) and
# the intake of results crawled behind it. The records of one fetch are handed over in one task instead,
# raced against the same stop signals as before; a rebalance still abandons the rest of a batch.
DRAIN_YIELD_EVERY = 100

Batch = list[tuple[TopicPartition, Message]]


async def _drain_in_batches(self: Any, fetcher: Any) -> None:
    callback = self.callback
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    acks_enabled_for = self.app.topics.acks_enabled_for
    commit_every = self._commit_every
    app = self.app

    async def fetch() -> tuple[int, Batch]:
        batch: Batch = []
        generation = app.consumer_generation_id
        async for pair in self.getmany(timeout=1.0):
            if not batch:
                # Faust's getmany yields one generation's records (it stops at a change): the one current
                # when they come, not when they were asked for. A rebalance may end while the request
                # waits in the consumer thread; tagged with the generation before it, the records that
                # came after it were dropped as stale, and nothing read them again before the next rebalance.
                generation = app.consumer_generation_id
            batch.append(pair)
        return generation, batch

    async def deliver(batch: Batch, generation: int) -> None:
        for n, (tp, message) in enumerate(batch, 1):
            if app.consumer_generation_id != generation:
                return  # a rebalance began: the rest is read again by whoever owns it now
            if n % DRAIN_YIELD_EVERY == 0:
                await asyncio.sleep(0)
            offset = message.offset
            r_offset = get_read_offset(tp)
            if r_offset is not None and offset < r_offset:
                continue
            if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()
            await callback(message)
            set_read_offset(tp, offset)

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            self.diag.set_flag(faust_consumer.CONSUMER_FETCHING)
            generation, batch = await fetch()
            await asyncio.sleep(0)
            if batch and not self.should_stop:
                await self.wait_first(deliver(batch, generation), self.suspend_flow.wait())
            self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if not self.transport.app.should_stop:
            raise
    except asyncio.CancelledError:
        if not self.transport.app.should_stop:
            raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)


# Under exactly-once the last offset of a changelog partition is a transaction marker, which a
# read_committed consumer never hands out, so Faust's recovery cannot tell it has reached the end: it waits
# for one more record until two 5 s timeouts have passed, then finds its position past the end. Every
# worker start and rebalance with state to restore took 10 s more (the demo of a second `awe dev` waited
# 11 s for its first event). The recovery's wait for a record, its only ``asyncio.wait_for``, is cut to
# this; two of them, as Faust asks, still let the consumer hand over what it fetched.
RECOVERY_IDLE_S = 0.25
_FAUST_RECOVERY_IDLE_S = 5.0


class _RecoveryAsyncio:
    """``asyncio`` as ``faust.tables.recovery`` sees it, with the recovery's idle wait shortened."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    def wait_for(awaitable: Any, timeout: float | None) -> Any:
        """:func:`asyncio.wait_for`, with Faust's 5 s idle wait cut to ``RECOVERY_IDLE_S``."""
        return asyncio.wait_for(awaitable, RECOVERY_IDLE_S if timeout == _FAUST_RECOVERY_IDLE_S else timeout)


def tune_faust_consumer() -> None:
    """Apply the fixes (idempotent); called before a Faust app is created."""
    defaults = aiokafka_fetcher.Fetcher.__init__.__kwdefaults__
    if defaults is not None:
        defaults["prefetch_backoff"] = PREFETCH_BACKOFF_S
    thread_class = faust_aiokafka.AIOKafkaConsumerThread
    thread_class._create_worker_consumer = _create_worker_consumer_with_short_poll  # type: ignore[method-assign]
    faust_aiokafka.Producer.commit_transactions = _commit_transactions_concurrently  # type: ignore[method-assign]
    faust_aiokafka.Producer._settings_default = _producer_settings_with_short_backoff  # type: ignore[method-assign]
    faust_consumer.Consumer._add_gap = _add_gap_before_record  # type: ignore[method-assign]
    faust_consumer.Consumer.ack = _ack_and_wake_committer  # type: ignore[method-assign]
    faust_consumer.Consumer._commit_handler = ServiceTask(_commit_when_idle)  # type: ignore[method-assign]
    faust_consumer.Consumer._drain_messages = _drain_in_batches  # type: ignore[method-assign]
    setattr(faust_recovery, "asyncio", _RecoveryAsyncio())  # noqa: B010 - the module name Faust reads
