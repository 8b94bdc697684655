"""The audit chain of a recorded run: from the start command to each AI decision."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.audit import decisions
from schemas.envelope import Envelope

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _log(name: str) -> list[Envelope]:
    return [Envelope.model_validate(json.loads(line)) for line in (GOLDEN / f"{name}.jsonl").read_text().splitlines()]


def test_each_ai_decision_is_chained_back_to_the_start_through_retries_and_upstream_results() -> None:
    events = _log("ai-retries-fallback")
    found = decisions(events)
    assert [d.call.payload["node_id"] for d in found] == ["classify", "classify", "say"]
    for decision in found:
        assert decision.chain[0].type == "RunStarted"  # every chain starts at the command that started the run
        assert decision.chain[-1] == decision.call
        for earlier, later in zip(decision.chain, decision.chain[1:], strict=False):
            assert earlier.seq < later.seq
    # The fallback's answer was asked for after a retry timer, armed by a failure, of an attempt scheduled...
    second = [e.type for e in found[1].chain]
    assert second[-3:] == ["NodeRetrying", "NodeScheduled", "AICallRecorded"]
    # ...and the downstream node's call was caused by the upstream node's answer.
    say = found[2].chain
    scheduled_say = say[-2]
    assert scheduled_say.type == "NodeScheduled" and scheduled_say.payload["node_id"] == "say"
    assert scheduled_say.causation_id == found[1].call.causation_id


def test_a_run_without_ai_has_no_decisions() -> None:
    assert decisions(_log("http-timeout-cancel")) == []
