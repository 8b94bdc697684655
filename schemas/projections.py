"""Projections of the event store: the run list, the run index, and AI usage per tenant, workflow, model
and day. Each is a pure fold over ``awe.events`` records, so a rebuild from offset 0 gives the same result
every time.

Projections read events as plain JSON objects, not models: a rebuild folds millions of them, and only a
few fields of each matter here. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from schemas.upcasting import current_version, upcast_payload

#: Costs are summed in integer picodollars: exact, so totals do not depend on the order partitions interleave.
_PICO = 10**12

_TERMINAL = {"RunSucceeded": "succeeded", "RunFailed": "failed", "RunCancelled": "cancelled"}


def usage_key(tenant: str, workflow: str | None, model: str, day: str) -> str:
    """The key of one usage total: ``tenant/workflow/model/day``."""
    return f"{tenant}/{workflow or '-'}/{model}/{day}"


class Projections:
    """The folded state of the projections, and the fold itself (:meth:`apply`)."""

    def __init__(self) -> None:
        #: run id -> the run's summary (status, workflow, version, tenant, times, usage, where it starts)
        self.runs: dict[str, dict[str, Any]] = {}
        #: run id -> [partition, offset of its first event]
        self.index: dict[str, list[int]] = {}
        #: usage_key(...) -> totals of the AI calls it covers
        self.usage: dict[str, dict[str, Any]] = {}
        #: keys changed since the last call to :meth:`take_changes`, by projection
        self.changed: dict[str, set[str]] = {"runs": set(), "index": set(), "usage": set()}
        # Nodes waiting (sleep, approval) and in flight, per live run: a run waits when only the former remain.
        self._waiting: dict[str, set[str]] = {}
        self._active: dict[str, set[str]] = {}
        self.events = 0

    def apply(self, partition: int, offset: int, event: dict[str, Any]) -> None:
        """Fold one event (the JSON object of a record on ``awe.events``) stored at ``partition``/``offset``."""
        self.events += 1
        kind = event["type"]
        version = event.get("schema_version", 1)
        if version != current_version(kind):
            event = {**event, "payload": upcast_payload(kind, version, event["payload"])}
        run_id = event["run_id"]
        if kind == "RunStarted" or kind == "RunRejected":
            self._start(partition, offset, event)
            return
        run = self.runs.get(run_id)
        if run is None:
            return  # the run began before the offsets this fold started from
        run["last_seq"] = event["seq"]
        payload = event["payload"]
        node = payload.get("node_id")
        if kind in _TERMINAL:
            run["status"] = _TERMINAL[kind]
            run["ended_at"] = event["time"]
            self._waiting.pop(run_id, None)
            self._active.pop(run_id, None)
        elif kind == "AICallRecorded":
            self._usage(run, event, payload)
        elif kind == "RunForked":
            run["forks"] = [*run.get("forks", []), payload["child_run_id"]]
        elif node is not None and run_id in self._active:
            waiting, active = self._waiting[run_id], self._active[run_id]
            if kind == "RunWaiting":
                waiting.add(node)
            elif kind in ("NodeScheduled", "NodeRetrying"):
                active.add(node)
            elif kind in ("NodeSucceeded", "NodeFailed"):
                waiting.discard(node)
                active.discard(node)
            run["status"] = "waiting" if waiting and not active else "running"
        self.changed["runs"].add(run_id)

    def _start(self, partition: int, offset: int, event: dict[str, Any]) -> None:
        run_id = event["run_id"]
        payload = event["payload"]
        started = event["type"] == "RunStarted"
        self.runs[run_id] = {
            "run_id": run_id,
            "tenant_id": event["tenant_id"],
            "workflow": payload.get("workflow"),
            "version": payload.get("version"),
            "status": "running" if started else "rejected",
            "started_at": event["time"],
            "ended_at": None if started else event["time"],
            "last_seq": event["seq"],
            "parent_run_id": payload.get("parent_run_id"),
            "calls": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_pusd": 0,
        }
        self.index[run_id] = [partition, offset]
        if started:
            self._waiting[run_id] = set()
            self._active[run_id] = set()
        self.changed["runs"].add(run_id)
        self.changed["index"].add(run_id)

    def _usage(self, run: dict[str, Any], event: dict[str, Any], payload: dict[str, Any]) -> None:
        usage = payload.get("usage") or {}
        tokens_in, tokens_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
        cost = payload.get("cost_usd")
        picos = round(cost * _PICO) if cost is not None else 0
        run["calls"] += 1
        run["input_tokens"] += tokens_in
        run["output_tokens"] += tokens_out
        run["cost_pusd"] += picos
        key = usage_key(event["tenant_id"], payload.get("workflow"), payload["model"], event["time"][:10])
        total = self.usage.get(key)
        if total is None:
            total = self.usage[key] = {
                "tenant_id": event["tenant_id"],
                "workflow": payload.get("workflow"),
                "model": payload["model"],
                "provider": payload.get("provider"),
                "day": event["time"][:10],
                "calls": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cached_tokens": 0,
                "cost_pusd": 0,
                "unpriced_calls": 0,
            }
        total["calls"] += 1
        total["input_tokens"] += tokens_in
        total["output_tokens"] += tokens_out
        total["cached_tokens"] += usage.get("cached_tokens", 0)
        total["cost_pusd"] += picos
        if cost is None:
            total["unpriced_calls"] += 1
        self.changed["usage"].add(key)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """A run's summary as published, with ``cost_usd``."""
        found = self.runs.get(run_id)
        return published(found) if found is not None else None

    def take_changes(self) -> dict[str, set[str]]:
        """The keys changed since the last call, by projection, and forget them."""
        changed, self.changed = self.changed, {"runs": set(), "index": set(), "usage": set()}
        return changed

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of every projection: equal digests, equal projections."""
        canonical = orjson.dumps(
            {"runs": self.runs, "index": self.index, "usage": self.usage}, option=orjson.OPT_SORT_KEYS
        )
        return hashlib.sha256(canonical).hexdigest()


def published(record: dict[str, Any]) -> dict[str, Any]:
    """A run summary or usage total as written to its topic: the exact picodollars as ``cost_usd``."""
    out = {k: v for k, v in record.items() if k != "cost_pusd"}
    out["cost_usd"] = record["cost_pusd"] / _PICO
    return out
