"""The projections' fold over real recorded runs: statuses, usage, the index, and order independence."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from schemas.projections import Projections, published, usage_key

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _log(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (GOLDEN / f"{name}.jsonl").read_text().splitlines()]


def test_runs_usage_and_index_from_recorded_runs() -> None:
    projections = Projections()
    for partition, name in enumerate(["triage", "ai-retries-fallback", "http-timeout-cancel"]):
        for offset, event in enumerate(_log(name)):
            projections.apply(partition, 100 + offset, event)
    triage, ai, cancelled = (_log(n)[0]["run_id"] for n in ["triage", "ai-retries-fallback", "http-timeout-cancel"])
    assert projections.runs[triage]["status"] == "succeeded"
    assert projections.runs[cancelled]["status"] == "cancelled" and projections.runs[cancelled]["ended_at"]
    assert projections.index[ai] == [1, 100]
    summary = projections.run(ai)
    assert summary is not None
    calls = [e["payload"] for e in _log("ai-retries-fallback") if e["type"] == "AICallRecorded"]
    assert summary["calls"] == len(calls) == 3
    assert summary["input_tokens"] == sum(c["usage"]["input_tokens"] for c in calls)
    assert abs(summary["cost_usd"] - sum(c["cost_usd"] or 0 for c in calls)) < 1e-15
    day = _log("ai-retries-fallback")[0]["time"][:10]
    key = usage_key("default", "golden-ai", "claude-haiku-4-5", day)
    assert published(projections.usage[key])["calls"] == 1
    assert projections.events == sum(len(_log(n)) for n in ["triage", "ai-retries-fallback", "http-timeout-cancel"])


def test_a_run_waiting_for_an_approval_reads_as_waiting() -> None:
    projections = Projections()
    events = _log("triage")
    signal = next(i for i, e in enumerate(events) if e["type"] == "SignalReceived")
    for offset, event in enumerate(events[:signal]):
        projections.apply(0, offset, event)
    assert projections.runs[events[0]["run_id"]]["status"] == "waiting"


def test_the_fold_does_not_depend_on_how_partitions_interleave() -> None:
    logs = [_log(n) for n in ["triage", "ai-retries-fallback", "http-timeout-cancel"]]
    digests = set()
    for seed in range(5):
        rng = random.Random(seed)
        queues = [list(enumerate(log)) for log in logs]
        projections = Projections()
        while any(queues):
            partition = rng.choice([i for i, q in enumerate(queues) if q])
            offset, event = queues[partition].pop(0)
            projections.apply(partition, offset, event)
        digests.add(projections.digest())
    assert len(digests) == 1
