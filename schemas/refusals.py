"""Whether a run takes a signal or a cancel: one rule for the orchestrator, the CLI and the gateway.

Only an approval node takes a signal, once, while it has not ended; a signal that arrives before the node
is reached is kept until it is. Only a run that has started and not ended can be cancelled. The
orchestrator drops what these refuse, so the CLI and the gateway check first and tell the sender, as
Temporal's CLI refuses to signal or cancel a closed workflow.
"""

from __future__ import annotations

from typing import Any

from schemas.exceptions import CommandRefusedError
from schemas.state import ENDED_NODE, RunState


def refuse_cancel(state: RunState) -> CommandRefusedError | None:
    """Why the run, as it stands, would drop a cancel; None when it would take it."""
    if state.status == "pending":
        return CommandRefusedError(f"no run {state.run_id}", code="unknown_run")
    if state.terminal:
        return CommandRefusedError(f"run {state.run_id} has already {_ended(state.status)}", code="run_ended")
    return None


def refuse_signal(state: RunState, node_id: str) -> CommandRefusedError | None:
    """Why the run, as it stands, would drop a signal for ``node_id``; None when it would take it."""
    run = state.run_id
    refused = refuse_cancel(state)
    if refused is not None:
        return refused
    spec = state.definition.nodes.get(node_id) if state.definition else None
    node = state.nodes.get(node_id)
    if spec is None or node is None:
        known = ", ".join(sorted(state.nodes)) or "none"
        return CommandRefusedError(f"run {run} has no node {node_id} (its nodes: {known})", code="unknown_node")
    if spec.kind != "approval":
        return CommandRefusedError(
            f"node {node_id} of run {run} is a {spec.kind} node; only approval nodes take signals",
            code="not_an_approval",
        )
    if node.status in ENDED_NODE:
        return CommandRefusedError(f"node {node_id} of run {run} has already {node.status}", code="node_ended")
    if node_id in state.signals:
        return CommandRefusedError(f"node {node_id} of run {run} has already had its answer", code="already_signalled")
    return None


def refuse_answer(data: Any) -> CommandRefusedError | None:
    """Why ``data`` is not an approval's answer: it must be an object whose ``approve`` is true or false.

    The orchestrator takes any other data as a rejection, as it always has, so a log stays replayable; the
    CLI and the gateway refuse it instead, so a bare ``awe signal RUN NODE`` can not fail a run by mistake.
    """
    if isinstance(data, dict) and isinstance(data.get("approve"), bool):
        return None
    return CommandRefusedError(
        'an approval takes {"approve": true} or {"approve": false} (other fields are kept as its output)',
        code="invalid_answer",
    )


def _ended(status: str) -> str:
    return "been cancelled" if status == "cancelled" else "been rejected" if status == "rejected" else status
