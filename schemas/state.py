"""The state of a run, and ``evolve``: the pure fold of a run's events into it.

The orchestrator's table, the CLI, the gateway and replay all fold with this one function, so every view
of a run agrees with its log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.ai import UsageTotals
from schemas.definition import WorkflowDefinition
from schemas.envelope import Envelope
from schemas.errors import ErrorInfo
from schemas.events import (
    EVENT_TYPES,
    AICallRecorded,
    NodeFailed,
    NodeRetrying,
    NodeScheduled,
    NodeSkipped,
    NodeSucceeded,
    Payload,
    RunCancelled,
    RunFailed,
    RunForked,
    RunRejected,
    RunStarted,
    RunSucceeded,
    RunWaiting,
    SignalReceived,
)
from schemas.exceptions import SequenceGapError
from schemas.upcasting import upcast

NodeStatus = Literal["pending", "scheduled", "retrying", "waiting", "succeeded", "failed", "skipped", "cancelled"]
RunStatus = Literal["pending", "running", "waiting", "succeeded", "failed", "cancelled", "rejected"]
TimerKind = Literal["retry", "timeout", "sleep", "deadline"]

TERMINAL_RUN: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "rejected"})
ENDED_NODE: frozenset[str] = frozenset({"succeeded", "failed", "skipped", "cancelled"})
IN_FLIGHT_NODE: frozenset[str] = frozenset({"scheduled", "retrying", "waiting"})


class NodeState(BaseModel):
    """Where one node stands."""

    model_config = ConfigDict(frozen=True)

    status: NodeStatus = "pending"
    attempts: int = 0
    output: Any = None
    error: ErrorInfo | None = None
    task_id: str | None = None
    reason: str | None = None


class Timer(BaseModel):
    """A durable timer: part of the run's state, so it survives any worker restart."""

    model_config = ConfigDict(frozen=True)

    timer_id: str
    node_id: str
    kind: TimerKind
    attempt: int
    fire_at: float


class RunState(BaseModel):
    """A run as the fold of its events up to ``seq``."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    tenant_id: str = "default"
    seq: int = 0
    status: RunStatus = "pending"
    workflow: str | None = None
    version: int | None = None
    definition: WorkflowDefinition | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    nodes: dict[str, NodeState] = Field(default_factory=dict)
    timers: dict[str, Timer] = Field(default_factory=dict)
    signals: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    usage: UsageTotals = Field(default_factory=UsageTotals)
    parent_run_id: str | None = None
    forks: list[str] = Field(default_factory=list)
    principal: str | None = None
    correlation_id: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        """True once the run succeeded, failed, was cancelled or rejected."""
        return self.status in TERMINAL_RUN


def run_view(state: RunState) -> dict[str, Any]:
    """The run as scripts see it (``awe run --json``, the gateway): status, outputs and every node."""
    return {
        "run_id": state.run_id,
        "status": state.status if state.status != "pending" else "running",
        "outputs": state.outputs,
        "nodes": {
            node_id: {
                "status": node.status,
                "output": node.output,
                "attempts": node.attempts,
                "error": node.error.model_dump(mode="json") if node.error else None,
            }
            for node_id, node in state.nodes.items()
        },
        "error": state.error.model_dump(mode="json") if state.error else None,
        "usage": state.usage.model_dump(mode="json"),
    }


def timer_id(kind: TimerKind, node_id: str, attempt: int) -> str:
    """The id of a node's timer; stable, so a timer that fires twice is recognised the second time."""
    return f"{kind}:{node_id}:{attempt}"


def evolve(state: RunState, event: Envelope) -> RunState:
    """Fold one event into the state. A seq already folded is ignored; a gap raises SequenceGapError."""
    if event.seq <= state.seq:
        return state
    if event.seq != state.seq + 1:
        raise SequenceGapError(
            f"run {event.run_id}: expected seq {state.seq + 1}, got {event.seq}",
            detail={"run_id": event.run_id, "expected": state.seq + 1, "got": event.seq},
        )
    event = upcast(event)
    payload = EVENT_TYPES[event.type].model_validate(event.payload)
    return apply(state, event, payload)


def apply(state: RunState, event: Envelope, payload: Payload) -> RunState:
    """``evolve`` for an event whose payload is already parsed (the orchestrator's hot path)."""
    nodes = state.nodes
    timers = state.timers
    update: dict[str, Any] = {"seq": event.seq}

    def set_node(node_id: str, **changes: Any) -> None:
        nonlocal nodes
        nodes = {**nodes, node_id: nodes.get(node_id, NodeState()).model_copy(update=changes)}

    def drop_timers(node_id: str | None = None) -> None:
        nonlocal timers
        timers = {k: t for k, t in timers.items() if node_id is not None and t.node_id != node_id}

    def abandon_in_flight() -> None:
        # A run that ends early leaves its outstanding tasks, timers and approvals unanswered; the view
        # says so rather than showing them still scheduled or waiting under a finished run.
        nonlocal nodes
        nodes = {
            node_id: node.model_copy(update={"status": "cancelled"}) if node.status in IN_FLIGHT_NODE else node
            for node_id, node in nodes.items()
        }

    def add_timer(timer: Timer) -> None:
        nonlocal timers
        timers = {**timers, timer.timer_id: timer}

    match payload:
        case RunStarted():
            update |= {
                "tenant_id": event.tenant_id,
                "status": "running",
                "workflow": payload.workflow,
                "version": payload.version,
                "definition": payload.definition,
                "inputs": payload.inputs,
                "correlation_id": event.correlation_id,
                "started_at": event.time,
                "parent_run_id": payload.parent_run_id,
                "principal": event.principal,
            }
            nodes = {node_id: NodeState() for node_id in payload.definition.nodes}
        case RunRejected():
            update |= {
                "tenant_id": event.tenant_id,
                "status": "rejected",
                "correlation_id": event.correlation_id,
                "error": ErrorInfo(
                    code=payload.code,
                    message=payload.message,
                    detail=[p.model_dump(mode="json") for p in payload.problems] or None,
                ),
                "ended_at": event.time,
            }
        case NodeScheduled():
            set_node(payload.node_id, status="scheduled", attempts=payload.attempt, task_id=payload.task_id)
            timers = {k: t for k, t in timers.items() if not (t.node_id == payload.node_id and t.kind == "retry")}
            if payload.deadline is not None:
                add_timer(
                    Timer(
                        timer_id=timer_id("timeout", payload.node_id, payload.attempt),
                        node_id=payload.node_id,
                        kind="timeout",
                        attempt=payload.attempt,
                        fire_at=payload.deadline,
                    )
                )
        case NodeRetrying():
            set_node(payload.node_id, status="retrying", attempts=payload.attempt, error=payload.error)
            drop_timers(payload.node_id)
            add_timer(
                Timer(
                    timer_id=timer_id("retry", payload.node_id, payload.attempt),
                    node_id=payload.node_id,
                    kind="retry",
                    attempt=payload.attempt,
                    fire_at=payload.retry_at,
                )
            )
        case NodeSucceeded():
            set_node(payload.node_id, status="succeeded", attempts=payload.attempt, output=payload.output, error=None)
            drop_timers(payload.node_id)
        case NodeFailed():
            set_node(payload.node_id, status="failed", attempts=payload.attempt, error=payload.error)
            drop_timers(payload.node_id)
        case NodeSkipped():
            set_node(payload.node_id, status="skipped", reason=payload.reason)
        case RunWaiting():
            set_node(payload.node_id, status="waiting", attempts=max(1, nodes[payload.node_id].attempts))
            if payload.until is not None:
                kind: TimerKind = "sleep" if payload.reason == "sleep" else "deadline"
                add_timer(
                    Timer(
                        timer_id=timer_id(kind, payload.node_id, 1),
                        node_id=payload.node_id,
                        kind=kind,
                        attempt=1,
                        fire_at=payload.until,
                    )
                )
        case RunForked():
            update["forks"] = [*state.forks, payload.child_run_id]
        case AICallRecorded():
            update["usage"] = state.usage.add(payload.usage, payload.cost_usd)
        case SignalReceived():
            update["signals"] = {**state.signals, payload.node_id: payload.data}
        case RunSucceeded():
            update |= {"status": "succeeded", "outputs": payload.outputs, "ended_at": event.time}
            drop_timers()
        case RunFailed():
            update |= {"status": "failed", "error": payload.error, "ended_at": event.time}
            drop_timers()
            abandon_in_flight()
        case RunCancelled():
            # As the error of the run, so every view says why and (through the envelope) who.
            reason = payload.reason or "the run was cancelled"
            update |= {
                "status": "cancelled",
                "error": ErrorInfo(code="cancelled", message=reason),
                "ended_at": event.time,
            }
            drop_timers()
            abandon_in_flight()

    update["nodes"] = nodes
    update["timers"] = timers
    if update.get("status", state.status) in ("running", "waiting"):
        update["status"] = _live_status(nodes)
    return state.model_copy(update=update)


def _live_status(nodes: dict[str, NodeState]) -> RunStatus:
    statuses = {n.status for n in nodes.values()}
    if "waiting" in statuses and not statuses & {"scheduled", "retrying"}:
        return "waiting"
    return "running"


def fold(run_id: str, events: list[Envelope]) -> RunState:
    """The state of a run after the given events (in seq order)."""
    state = RunState(run_id=run_id)
    for event in events:
        state = evolve(state, event)
    return state
