"""Latency fixes to Faust's aiokafka consumer and transactional commits that neither library exposes.

Both were found with the engine benchmark (``benchmarks/engine.py``); each comment says what it cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.structs import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

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
# (step p50 1.6 s). A 100 ms long poll bounds that stall; an idle worker then sends ~10 fetches/s.
FETCH_MAX_WAIT_MS = 100

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


def tune_faust_consumer() -> None:
    """Apply the fixes (idempotent); called before a Faust app is created."""
    defaults = aiokafka_fetcher.Fetcher.__init__.__kwdefaults__
    if defaults is not None:
        defaults["prefetch_backoff"] = PREFETCH_BACKOFF_S
    thread_class = faust_aiokafka.AIOKafkaConsumerThread
    thread_class._create_worker_consumer = _create_worker_consumer_with_short_poll  # type: ignore[method-assign]
    faust_aiokafka.Producer.commit_transactions = _commit_transactions_concurrently  # type: ignore[method-assign]
