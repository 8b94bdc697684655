"""The run directory's list: newest first per tenant, filtered, paged by cursor, a repeated start not listed twice."""

from __future__ import annotations

from typing import Any

from gateway.directory import RunDirectory


def _event(kind: str, run_id: str, tenant: str, time: str, seq: int = 1, **payload: Any) -> dict[str, Any]:
    return {"type": kind, "run_id": run_id, "tenant_id": tenant, "seq": seq, "time": time, "payload": payload}


def _started(directory: RunDirectory, run_id: str, tenant: str, second: int, workflow: str = "w") -> None:
    time = f"2026-12-03T10:00:{second:02d}+00:00"
    directory.apply(0, second, _event("RunStarted", run_id, tenant, time, workflow=workflow, version=1, inputs={}))


def _ids(runs: list[dict[str, Any]]) -> list[str]:
    return [r["run_id"] for r in runs]


def test_runs_are_listed_newest_first_per_tenant_whatever_order_they_are_folded_in() -> None:
    directory = RunDirectory()
    # Partitions interleave: starts are folded out of time order, and ties on time order by run id.
    for run_id, tenant, second in [("a3", "acme", 3), ("a1", "acme", 1), ("g2", "globex", 2), ("a2", "acme", 2)]:
        _started(directory, run_id, tenant, second)
    _started(directory, "a2b", "acme", 2)
    assert _ids(directory.list("acme")) == ["a3", "a2b", "a2", "a1"]
    assert _ids(directory.list("globex")) == ["g2"]
    assert directory.list("nobody") == []


def test_filters_limit_and_cursor_page_through_the_list() -> None:
    directory = RunDirectory()
    for second in range(10):
        _started(directory, f"r{second}", "acme", second, workflow="even" if second % 2 == 0 else "odd")
    directory.apply(0, 99, _event("RunSucceeded", "r4", "acme", "2026-12-03T10:01:00+00:00", seq=2))
    assert _ids(directory.list("acme", limit=3)) == ["r9", "r8", "r7"]
    assert _ids(directory.list("acme", limit=3, before="r7")) == ["r6", "r5", "r4"]
    assert _ids(directory.list("acme", workflow="even", before="r6")) == ["r4", "r2", "r0"]
    assert _ids(directory.list("acme", status="succeeded")) == ["r4"]
    assert _ids(directory.list("acme", status="running", limit=2, before="r5")) == ["r3", "r2"]
    # An unknown cursor pages from the newest, as no cursor does.
    assert _ids(directory.list("acme", limit=1, before="nope")) == ["r9"]


def test_a_repeated_start_moves_the_run_instead_of_listing_it_twice() -> None:
    directory = RunDirectory()
    _started(directory, "r1", "acme", 1)
    _started(directory, "r2", "acme", 2)
    _started(directory, "r1", "acme", 3)  # a duplicate record, as at-least-once delivery may write
    assert _ids(directory.list("acme")) == ["r1", "r2"]
