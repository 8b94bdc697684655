"""Whether a run takes a signal for a node: one rule for the orchestrator, the CLI and the gateway.

Only an approval node takes a signal, once, while it has not ended; a signal that arrives before the node
is reached is kept until it is. The orchestrator drops a signal this refuses, so the CLI and the gateway
check it first and tell the sender, as Temporal's CLI refuses to signal a closed workflow.
"""

from __future__ import annotations

from schemas.exceptions import SignalRefusedError
from schemas.state import ENDED_NODE, RunState


def refuse_signal(state: RunState, node_id: str) -> SignalRefusedError | None:
    """Why the run, as it stands, would drop a signal for ``node_id``; None when it would take it."""
    run = state.run_id
    if state.status == "pending":
        return SignalRefusedError(f"no run {run}", code="unknown_run")
    if state.terminal:
        return SignalRefusedError(f"run {run} has already {_ended(state.status)}", code="run_ended")
    spec = state.definition.nodes.get(node_id) if state.definition else None
    node = state.nodes.get(node_id)
    if spec is None or node is None:
        known = ", ".join(sorted(state.nodes)) or "none"
        return SignalRefusedError(f"run {run} has no node {node_id} (its nodes: {known})", code="unknown_node")
    if spec.kind != "approval":
        return SignalRefusedError(
            f"node {node_id} of run {run} is a {spec.kind} node; only approval nodes take signals",
            code="not_an_approval",
        )
    if node.status in ENDED_NODE:
        return SignalRefusedError(f"node {node_id} of run {run} has already {node.status}", code="node_ended")
    if node_id in state.signals:
        return SignalRefusedError(f"node {node_id} of run {run} has already had its answer", code="already_signalled")
    return None


def _ended(status: str) -> str:
    return "been cancelled" if status == "cancelled" else "been rejected" if status == "rejected" else status
