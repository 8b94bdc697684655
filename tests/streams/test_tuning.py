"""The consumer latency fixes are in force once an app exists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.consumer.fetcher import Fetcher
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer

from streams.app import create_app
from streams.settings import Settings
from streams.tuning import FETCH_MAX_WAIT_MS, PREFETCH_BACKOFF_S, PRODUCER_RETRY_BACKOFF_MS


def test_create_app_applies_the_fetch_fixes(tmp_path: Path) -> None:
    create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path))
    assert (Fetcher.__init__.__kwdefaults__ or {})["prefetch_backoff"] == PREFETCH_BACKOFF_S
    assert AIOKafkaConsumerThread._create_worker_consumer.__name__ == "_create_worker_consumer_with_short_poll"
    assert FETCH_MAX_WAIT_MS <= 100
    assert Producer.commit_transactions.__name__ == "_commit_transactions_concurrently"
    from faust.transport.drivers.aiokafka import Consumer

    assert Consumer._commit_handler.fun.__name__ == "_commit_when_idle"
    assert Consumer.ack.__name__ == "_ack_and_wake_committer"


def test_faust_producers_retry_a_busy_transaction_coordinator_soon(tmp_path: Path) -> None:
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path))
    assert app.producer._settings_default()["retry_backoff_ms"] == PRODUCER_RETRY_BACKOFF_MS


def test_the_table_data_lives_under_the_data_dir(tmp_path: Path) -> None:
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path / "data", app_id="awe-x"))
    assert app.conf.datadir == tmp_path / "data" / "awe-x"
    assert app.conf.tabledir.is_relative_to(tmp_path / "data" / "awe-x")


def test_the_data_dir_defaults_to_the_awe_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AWE_DATA_DIR", raising=False)
    assert Settings(app_id="awe-y").worker_data_dir("awe-y") == tmp_path / "home" / "workers" / "awe-y"


def _close_thread_loop(consumer: Any) -> None:
    # The consumer's thread is never started here, so nothing closes the event loop it made for itself. Left
    # open, its ResourceWarning fired later on whichever thread collected it, and the warning's traceback kept
    # that thread's frame, with a Kafka client in it, alive past the session's broker.
    consumer._thread.thread_loop.close()


def _commits_after_each_record(tmp_path: Path, offsets: list[int]) -> list[int | None]:
    """Read ``offsets`` of one partition as Faust's fetch loop does, acknowledge each one and take the offset
    a commit would write right then."""
    from faust.types import TP

    async def main() -> list[int | None]:
        app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path))
        consumer = app.consumer
        try:
            tp = TP("t.results", 0)
            committed: list[int | None] = []
            read: int | None = None
            for offset in offsets:
                # What Consumer._drain_messages does before handing the record on.
                if read and offset - read > 1:
                    await consumer._add_gap(tp, read + 1, offset)
                read = offset
                consumer._acked[tp].append(offset)
                consumer._acked_index[tp].add(offset)
                new = consumer._new_offset(tp)
                committable = new if new is not None and consumer._should_commit(tp, new) else None
                if committable is not None:
                    consumer._committed_offset[tp] = committable
                committed.append(committable)
            return committed
        finally:
            _close_thread_loop(consumer)

    return asyncio.run(main())


def test_a_record_after_a_transaction_marker_is_committed_by_the_first_commit(tmp_path: Path) -> None:
    # One result per transaction: each record is followed by its commit marker.
    assert _commits_after_each_record(tmp_path, [0, 2, 4, 6, 8, 10, 12]) == [1, 3, 5, 7, 9, 11, 13]


def test_a_commit_steps_over_an_aborted_transaction(tmp_path: Path) -> None:
    # 6 was aborted (read_committed never delivers it); 3, 5, 7 and 9 are transaction markers.
    assert _commits_after_each_record(tmp_path, [2, 4, 8, 10]) == [3, 5, 9, 11]


def _drain(
    tmp_path: Path,
    records: int,
    *,
    rebalance_after: int | None = None,
    rebalance_while_fetching: bool = False,
) -> tuple[list[int], int]:
    """Run Faust's fetch loop over one fetched batch of ``records``; the offsets the streams were handed,
    and how many turns the event loop took meanwhile."""
    from faust.types import TP, Message

    async def main() -> tuple[list[int], int]:
        app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path))
        consumer = app.consumer
        try:
            tp = TP("t.results", 0)
            batch = [(tp, Message(tp.topic, 0, offset, 0.0, 0, {}, b"k", b"v", None)) for offset in range(records)]
            fetcher_stopped = asyncio.Event()
            fetches = 0

            async def getmany(**_: float) -> AsyncIterator[tuple[TP, Message]]:
                nonlocal fetches
                fetches += 1
                if fetches > 1:
                    fetcher_stopped.set()
                    return
                await asyncio.sleep(0)  # the request waits in the consumer thread
                if rebalance_while_fetching:
                    app.consumer_generation_id += 1
                for pair in batch:
                    yield pair

            handed: list[int] = []

            async def on_message(message: Message) -> None:
                handed.append(message.offset)
                if len(handed) == rebalance_after:
                    app.consumer_generation_id += 1

            turns = 0

            async def count_turns() -> None:
                nonlocal turns
                while True:
                    await asyncio.sleep(0)
                    turns += 1

            consumer.getmany = getmany  # type: ignore[method-assign]
            consumer.callback = on_message
            counter = asyncio.ensure_future(count_turns())
            await consumer._drain_messages(SimpleNamespace(_stopped=fetcher_stopped))
            counter.cancel()
            return handed, turns
        finally:
            _close_thread_loop(consumer)

    return asyncio.run(main())


def test_the_records_of_one_fetch_reach_the_streams_in_a_few_turns_of_the_event_loop(tmp_path: Path) -> None:
    # Faust's own loop took at least one turn per record: the intake crawled behind a busy loop.
    handed, turns = _drain(tmp_path, 60)
    assert handed == list(range(60))
    assert turns < 10


def test_a_rebalance_abandons_the_rest_of_a_fetched_batch(tmp_path: Path) -> None:
    handed, _ = _drain(tmp_path, 10, rebalance_after=3)
    assert handed == [0, 1, 2]


def test_records_fetched_after_a_rebalance_ended_are_handed_on(tmp_path: Path) -> None:
    handed, _ = _drain(tmp_path, 5, rebalance_while_fetching=True)
    assert handed == list(range(5))


def test_recovery_waits_briefly_for_a_record_that_is_a_transaction_marker(tmp_path: Path) -> None:
    from faust.tables import recovery

    from streams.tuning import RECOVERY_IDLE_S

    create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path))

    async def idle_wait() -> float:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            # What Faust's recovery awaits for its next changelog record, on a queue that stays empty.
            await recovery.asyncio.wait_for(asyncio.Queue().get(), timeout=5.0)
        return asyncio.get_running_loop().time() - started

    waited = asyncio.run(idle_wait())
    assert RECOVERY_IDLE_S <= waited < 2.5  # not Faust's 5 s, twice per recovery
    assert recovery.asyncio.sleep is asyncio.sleep  # everything else is asyncio's own
