"""Which signals a run takes: the rule the orchestrator applies and the CLI and the gateway check first."""

from __future__ import annotations

import pytest

from schemas.signals import refuse_signal
from schemas.state import NodeState, RunState
from schemas.validation import validate_definition

NODES = {"ok": {"kind": "approval"}, "calc": {"kind": "transform", "output": 1}}


def running(**nodes: NodeState) -> RunState:
    definition = validate_definition({"name": "wf", "nodes": NODES})
    return RunState(
        run_id="r1",
        status="running",
        definition=definition,
        nodes={"ok": NodeState(), "calc": NodeState(), **nodes},
    )


def test_an_approval_takes_a_signal_before_and_while_it_waits() -> None:
    assert refuse_signal(running(), "ok") is None, "an early signal is kept until the node is reached"
    assert refuse_signal(running(ok=NodeState(status="waiting")), "ok") is None


@pytest.mark.parametrize(
    ("state", "node", "code", "words"),
    [
        (RunState(run_id="r1"), "ok", "unknown_run", "no run r1"),
        (running().model_copy(update={"status": "succeeded"}), "ok", "run_ended", "already succeeded"),
        (running().model_copy(update={"status": "cancelled"}), "ok", "run_ended", "already been cancelled"),
        (running(), "nope", "unknown_node", "no node nope (its nodes: calc, ok)"),
        (running(), "calc", "not_an_approval", "is a transform node"),
        (running(ok=NodeState(status="failed")), "ok", "node_ended", "already failed"),
        (running().model_copy(update={"signals": {"ok": {"approve": True}}}), "ok", "already_signalled", "answer"),
    ],
)
def test_a_dropped_signal_is_refused_with_a_reason(state: RunState, node: str, code: str, words: str) -> None:
    refused = refuse_signal(state, node)
    assert refused is not None
    assert refused.code == code
    assert words in refused.message
    assert not refused.retryable
