"""Which signals and cancels a run takes, and what an approval's answer is: the rules the orchestrator
applies and the CLI and the gateway check first."""

from __future__ import annotations

import pytest

from schemas.refusals import refuse_answer, refuse_cancel, refuse_signal
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


def test_a_cancel_is_taken_only_by_a_run_that_started_and_has_not_ended() -> None:
    assert refuse_cancel(running()) is None
    assert refuse_cancel(running(ok=NodeState(status="waiting")).model_copy(update={"status": "waiting"})) is None
    unknown = refuse_cancel(RunState(run_id="r1"))
    assert unknown is not None and unknown.code == "unknown_run"
    ended = refuse_cancel(running().model_copy(update={"status": "failed"}))
    assert ended is not None and (ended.code, ended.message) == ("run_ended", "run r1 has already failed")


@pytest.mark.parametrize("data", [{"approve": True}, {"approve": False, "why": "no"}])
def test_an_answer_names_approve_true_or_false(data: object) -> None:
    assert refuse_answer(data) is None


@pytest.mark.parametrize("data", [None, {}, {"approve": "yes"}, {"approve": 1}, [True], "approve"])
def test_anything_else_is_not_an_answer(data: object) -> None:
    refused = refuse_answer(data)
    assert refused is not None and refused.code == "invalid_answer"
