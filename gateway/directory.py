"""The gateway's view of every run: the projections fold (``schemas.projections``) of ``awe.events``, fed
by the shared consumer, behind a lock. It answers which tenant owns a run, where its events start, and the
run list with filters, without a read from Kafka.

The run list keeps each tenant's runs ordered by ``(started_at, run_id)`` as they are folded, so a page
walks back from the newest (or from its cursor) and stops at ``limit`` matches: a list used to filter and
sort every run of every tenant, under the lock the consumer thread folds under, on the event loop.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.projections import Projections, published

IDEMPOTENT_PREFIX = "idem-"
"""Run ids derived from an Idempotency-Key start with this (``gateway/idempotency.py``)."""


def inputs_digest(inputs: Any) -> str:
    """A digest of a run's inputs that does not depend on key order."""
    return hashlib.sha256(orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class RecordedStart:
    """What a run keyed by an Idempotency-Key was started with, as its RunStarted records it."""

    workflow: str | None
    version: int | None
    inputs_digest: str | None
    rejected: bool


class RunDirectory:
    """Thread-safe: the consumer thread folds, request handlers read."""

    def __init__(self) -> None:
        self._projections = Projections()
        self._starts: dict[str, RecordedStart] = {}
        #: tenant -> its runs' ``(started_at, run_id)``, ascending
        self._order: dict[str, list[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def apply(self, partition: int, offset: int, event: dict[str, Any]) -> str | None:
        """Fold one event; return the workflow of its run (for routing), when known."""
        run_id = event["run_id"]
        starts = event["type"] in ("RunStarted", "RunRejected")
        with self._lock:
            before = self._projections.runs.get(run_id) if starts else None
            self._projections.apply(partition, offset, event)
            if starts:
                self._reorder(before, self._projections.runs[run_id])
            if run_id.startswith(IDEMPOTENT_PREFIX) and starts:
                payload = event["payload"]
                started = event["type"] == "RunStarted"
                self._starts[run_id] = RecordedStart(
                    payload.get("workflow"),
                    payload.get("version"),
                    inputs_digest(payload.get("inputs")) if started else None,
                    rejected=not started,
                )
            run = self._projections.runs.get(run_id)
            return None if run is None else run["workflow"]

    def _reorder(self, before: dict[str, Any] | None, run: dict[str, Any]) -> None:
        """Place a (re)started run in its tenant's order; a repeated start moves it rather than adding it."""
        if before is not None:
            order = self._order[before["tenant_id"]]
            del order[bisect.bisect_left(order, (before["started_at"], before["run_id"]))]
        # Starts arrive nearly in time order, so the insertion point is almost always at the end.
        bisect.insort(self._order.setdefault(run["tenant_id"], []), (run["started_at"], run["run_id"]))

    def forget_changes(self) -> None:
        """Drop the fold's record of changed keys (kept for publishing; the gateway never publishes)."""
        with self._lock:
            self._projections.take_changes()

    def summary(self, run_id: str, tenant: str) -> dict[str, Any] | None:
        """A run's summary if it exists and belongs to ``tenant``; None otherwise (never another's)."""
        with self._lock:
            run = self._projections.runs.get(run_id)
            if run is None or run["tenant_id"] != tenant:
                return None
            return published(run)

    def locate(self, run_id: str) -> tuple[int, int] | None:
        """The partition and offset of a run's first event."""
        with self._lock:
            found = self._projections.index.get(run_id)
            return None if found is None else (found[0], found[1])

    def workflow_of(self, run_id: str) -> str | None:
        """The workflow a run runs, when the fold has its start."""
        with self._lock:
            run = self._projections.runs.get(run_id)
            return None if run is None else run["workflow"]

    def recorded_start(self, run_id: str) -> RecordedStart | None:
        """What an idempotently started run was started with, once its RunStarted has been read."""
        with self._lock:
            return self._starts.get(run_id)

    def list(
        self,
        tenant: str,
        *,
        status: str | None = None,
        workflow: str | None = None,
        parent: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[dict[str, Any]]:
        """The tenant's runs, newest first, filtered; ``before`` pages on (started_at, run_id)."""
        with self._lock:
            order = self._order.get(tenant, [])
            end = len(order)
            cursor = self._projections.runs.get(before) if before is not None else None
            if cursor is not None:
                end = bisect.bisect_left(order, (cursor["started_at"], cursor["run_id"]))
            runs = self._projections.runs
            chosen: list[dict[str, Any]] = []
            for at in range(end - 1, -1, -1):
                if len(chosen) == limit:
                    break
                run = runs[order[at][1]]
                if (
                    (status is None or run["status"] == status)
                    and (workflow is None or run["workflow"] == workflow)
                    and (parent is None or run["parent_run_id"] == parent)
                ):
                    chosen.append(published(run))
            return chosen
