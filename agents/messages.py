"""What comes into ``decide`` and what it returns: plain values, so the core never touches I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.commands import CancelRun, NoteFork, SignalRun, StartRun
from schemas.definition import WorkflowDefinition
from schemas.envelope import Envelope
from schemas.state import RunState, Timer
from schemas.tasks import Task, TaskResult, TimerFired

Message = StartRun | CancelRun | SignalRun | NoteFork | TaskResult | TimerFired


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message for a run, with the clock reading and, for a start, the definition the edge resolved."""

    message: Message
    now: float
    definition: WorkflowDefinition | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What ``decide`` wants done: events to append, tasks to send, timers to arm, and the state after."""

    state: RunState
    events: list[Envelope] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
