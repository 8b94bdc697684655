"""The runs table's store: finished runs on disk, live runs in memory, both found the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams.app import RunStateValue, create_app
from streams.runstore import RUN_STORE_URL, SPILL_BATCH, RunStore
from streams.settings import Settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path))
    table = app.Table("runs", partitions=6, key_type=bytes, value_type=RunStateValue, store=RUN_STORE_URL)
    data = table.data
    assert isinstance(data, RunStore)
    yield data
    data.data.close()


def _record(key: bytes, value: Any, partition: int) -> SimpleNamespace:
    """A changelog event as Faust hands it to a store: decoded value, raw bytes on the message."""
    raw = None if value is None else b"raw"
    return SimpleNamespace(key=key, value=value, message=SimpleNamespace(value=raw, partition=partition))


def _identity(value: Any) -> Any:
    return value


def test_a_finished_run_is_kept_on_disk_and_read_back(store: RunStore) -> None:
    store.put(b"run-1", {"status": "running"}, 0)
    store.put(b"run-2", b'{"status":"succeeded"}', 1)
    assert store[b"run-1"] == {"status": "running"}
    assert store[b"run-2"] == b'{"status":"succeeded"}'
    assert store.live_values() == [{"status": "running"}]  # the finished run is not in memory
    assert b"run-2" in store and b"run-3" not in store
    assert sorted(store.keys()) == [b"run-1", b"run-2"] and len(store) == 2

    store.put(b"run-1", b'{"status":"failed"}', 0)  # it ends: from memory to disk
    assert store.live_values() == []
    assert store[b"run-1"] == b'{"status":"failed"}'
    del store[b"run-2"]
    assert b"run-2" not in store
    with pytest.raises(KeyError):
        del store[b"run-2"]
    with pytest.raises(KeyError):
        store[b"run-2"]


def test_a_recovery_batch_applies_each_key_s_last_record(store: RunStore) -> None:
    batch = [
        _record(b"kept", {"seq": 1}, 0),
        _record(b"kept", None, 0),
        _record(b"kept", b'{"seq":2}', 0),  # deleted, then written again: kept
        _record(b"gone", b'{"seq":1}', 1),
        _record(b"gone", None, 1),  # written, then deleted
        _record(b"live", {"seq": 1}, 2),
        _record(b"live", {"seq": 2}, 2),
    ]
    store.apply_changelog_batch(batch, to_key=_identity, to_value=_identity)  # type: ignore[arg-type]
    assert store[b"kept"] == b'{"seq":2}'
    assert b"gone" not in store
    assert store.live_values() == [{"seq": 2}]


def test_the_runs_of_a_lost_partition_are_forgotten_once_recovery_ends(store: RunStore) -> None:
    store.put(b"live-0", {"p": 0}, 0)
    store.put(b"done-0", b"{}", 0)
    store.put(b"live-3", {"p": 3}, 3)
    store.put(b"done-3", b"{}", 3)
    store[b"no-partition"] = b"{}"  # set as Faust would, without a partition: never forgotten
    asyncio.run(store.on_recovery_completed({TP("commands", 0), TP("results", 0)}, set()))
    assert sorted(store.keys()) == [b"done-0", b"live-0", b"no-partition"]


def test_the_database_is_private_to_the_process(store: RunStore) -> None:
    [(_, name, path)] = store.data._db.execute("PRAGMA database_list").fetchall()
    assert name == "main" and path == ""  # a private temporary database: no file anyone else can open


def test_finished_runs_reach_the_database_in_batches(store: RunStore) -> None:
    for n in range(SPILL_BATCH + 1):
        store.put(b"run-%d" % n, b"{}", n % 6)
    [(on_disk,)] = store.data._db.execute("SELECT COUNT(*) FROM ended").fetchall()
    assert on_disk == SPILL_BATCH  # one batch written; the last run waits for the next
    assert store[b"run-%d" % SPILL_BATCH] == b"{}" and len(store) == SPILL_BATCH + 1
    assert store.live_values() == []
