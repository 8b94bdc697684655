"""The runs table's store: live runs in memory, finished runs in a private SQLite file.

A worker keeps every run its partitions have seen, finished ones too: a finished run's state is what turns
away a second StartRun for its id, whose events would otherwise start again at seq 1. In a dict those
states grew a worker by about 1 MB/s at 400 runs/s. Here a finished run (its JSON, see
``streams.app.stored_state``) goes to an SQLite database that lives only as long as the process: SQLite
unlinks a private temporary database's file as soon as it opens it, so a crash leaves nothing behind, and
its pages stay in a bounded cache, spilling to disk. Memory then grows with the live runs only.

Like Faust's memory store, which it extends, it is rebuilt from the changelog whenever the worker starts or
gains a partition, and it forgets the runs of the partitions the worker no longer has once a recovery ends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from faust.stores import STORES, memory
from faust.types import TP, EventT

#: The store's URL: ``app.Table(..., store=RUN_STORE_URL)``. Faust reads only the scheme, but a URL with
#: nothing after it is false, and Faust then falls back to the app's default store.
RUN_STORE_URL = "awe-runs://local"

#: Finished runs held in memory before they are written to SQLite in one statement. Each statement releases
#: the GIL, which the worker's other threads may then hold while the event loop waits; with one statement
#: per finished run the http chain measured about 5 % fewer runs/s at 64 clients than with Faust's store.
SPILL_BATCH = 256

_SCHEMA = "CREATE TABLE ended (key BLOB PRIMARY KEY, partition INTEGER NOT NULL, value BLOB NOT NULL)"


class SpillingRuns(MutableMapping[Any, Any]):
    """A mapping whose ``bytes`` values (finished runs) live in SQLite; everything else in a dict.

    ``put`` records the partition of each key, so the runs of a lost partition can be dropped.
    """

    def __init__(self) -> None:
        self._live: dict[Any, Any] = {}
        self._live_partition: dict[Any, int] = {}
        self._pending: dict[Any, tuple[int, bytes]] = {}
        # "" is a private temporary database: on disk, unlinked at once, gone with the connection.
        # Only the event loop's thread uses it, but Faust may create the store on another.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(_SCHEMA)

    def put(self, key: Any, value: Any, partition: int) -> None:
        """Set ``key`` to ``value`` (a finished run's bytes go to disk) on ``partition``."""
        if isinstance(value, bytes):
            self._live.pop(key, None)
            self._live_partition.pop(key, None)
            self._pending[key] = (partition, value)
            if len(self._pending) >= SPILL_BATCH:
                self._spill()
        else:
            self._live[key] = value
            self._live_partition[key] = partition

    def _spill(self) -> None:
        if self._pending:
            rows = [(key, partition, value) for key, (partition, value) in self._pending.items()]
            self._pending.clear()
            self._db.executemany("INSERT OR REPLACE INTO ended VALUES (?, ?, ?)", rows)

    def put_many(self, items: Iterable[tuple[Any, Any, int]]) -> None:
        """``put`` for many keys, with the finished ones written in one statement (a recovery's batch)."""
        for key, value, partition in items:
            if isinstance(value, bytes):
                self._live.pop(key, None)
                self._live_partition.pop(key, None)
                self._pending[key] = (partition, value)
            else:
                self._live[key] = value
                self._live_partition[key] = partition
        self._spill()

    def live_values(self) -> list[Any]:
        """The values kept in memory: the runs that have not finished."""
        return list(self._live.values())

    def forget_partitions_except(self, partitions: set[int]) -> None:
        """Drop every key of a partition not in ``partitions`` (a key set without one is kept)."""
        self._spill()
        for key in [k for k, p in self._live_partition.items() if p >= 0 and p not in partitions]:
            self._live.pop(key, None)
            self._live_partition.pop(key, None)
        marks = ",".join("?" * len(partitions))
        self._db.execute(f"DELETE FROM ended WHERE partition >= 0 AND partition NOT IN ({marks})", tuple(partitions))

    def __getitem__(self, key: Any) -> Any:
        if key in self._live:
            return self._live[key]
        if key in self._pending:
            return self._pending[key][1]
        row = self._db.execute("SELECT value FROM ended WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return row[0]

    def __setitem__(self, key: Any, value: Any) -> None:
        # Faust's own writes (a recovery's tombstones) know no partition; awe's go through ``put``.
        self.put(key, value, self._live_partition.get(key, -1))

    def __delitem__(self, key: Any) -> None:
        found = self._live.pop(key, _MISSING) is not _MISSING
        found = self._pending.pop(key, None) is not None or found
        self._live_partition.pop(key, None)
        deleted = self._db.execute("DELETE FROM ended WHERE key = ?", (key,)).rowcount
        if not found and not deleted:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if key in self._live or key in self._pending:
            return True
        return self._db.execute("SELECT 1 FROM ended WHERE key = ?", (key,)).fetchone() is not None

    def __iter__(self) -> Iterator[Any]:
        self._spill()
        yield from list(self._live)
        for (key,) in self._db.execute("SELECT key FROM ended").fetchall():
            yield key

    def __len__(self) -> int:
        self._spill()
        ended: int = self._db.execute("SELECT COUNT(*) FROM ended").fetchone()[0]
        return len(self._live) + ended

    def clear(self) -> None:
        self._pending.clear()
        self._live.clear()
        self._live_partition.clear()
        self._db.execute("DELETE FROM ended")

    def close(self) -> None:
        """Close the database; SQLite has already unlinked its file."""
        self._db.close()


_MISSING = object()


class RunStore(memory.Store[Any, Any]):
    """Faust's memory store with :class:`SpillingRuns` as its data."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data: SpillingRuns = SpillingRuns()

    def put(self, key: Any, value: Any, partition: int) -> None:
        """Set a key of ``partition`` (the orchestrator's writes, sent to the changelog by itself)."""
        self.data.put(key, value, partition)

    def live_values(self) -> list[Any]:
        """The runs that have not finished, without reading the finished ones from disk."""
        return self.data.live_values()

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT[Any]],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Apply a batch of changelog records: a record without a value deletes its key."""
        latest: dict[Any, tuple[Any, int] | None] = {}
        for event in batch:
            key = to_key(event.key)
            latest.pop(key, None)  # keep the batch's order: a key's last record is applied last
            value = None if event.message.value is None else (to_value(event.value), event.message.partition)
            latest[key] = value
        self.data.put_many((key, kept[0], kept[1]) for key, kept in latest.items() if kept is not None)
        for key in [key for key, kept in latest.items() if kept is None]:
            self.data.pop(key, None)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Forget the runs of the partitions this worker no longer has."""
        self.data.forget_partitions_except({tp.partition for tp in active_tps})


STORES.update({RUN_STORE_URL.split(":", 1)[0]: f"{__name__}:RunStore"})
