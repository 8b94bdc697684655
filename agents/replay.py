"""Deterministic replay: run ``decide`` again over what a run's events recorded, and compare.

The log alone is enough. Each step of a run is the events one ``decide`` call appended; they share a
causation id (the command, task or timer that caused them) and a time. From them the message that caused
the step is rebuilt: the StartRun with the definition the run started with, every executor result with its
recorded output, error and AI answer, every fired timer, signal and cancel. No executor is called and no
model is asked again: the recorded results are the inputs. Each step starts from the fold of the recorded
events before it, so one divergence is reported once, where it happens, event by event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.decide import decide
from agents.messages import Inbound, Message
from schemas.ai import AICall
from schemas.commands import CancelRun, ForkOf, NoteFork, SignalRun, StartRun
from schemas.definition import WorkflowDefinition
from schemas.envelope import Envelope
from schemas.errors import ErrorInfo
from schemas.state import RunState, evolve
from schemas.tasks import TaskResult, TimerFired
from schemas.upcasting import upcast

_TIMER = re.compile(r"^(retry|timeout|sleep|deadline):")
#: Envelope fields compared besides the payload.
_FIELDS = (
    "seq",
    "type",
    "event_id",
    "tenant_id",
    "time",
    "causation_id",
    "correlation_id",
    "principal",
    "schema_version",
)


@dataclass(frozen=True)
class Difference:
    """One way the replayed events differ from the recorded ones."""

    step: int
    cause: str
    seq: int
    what: str
    recorded: Any = None
    replayed: Any = None

    def describe(self) -> str:
        """One readable line."""
        where = f"step {self.step} ({self.cause}), seq {self.seq}"
        return f"{where}: {self.what}: recorded {self.recorded!r}, replayed {self.replayed!r}"


@dataclass
class ReplayReport:
    """The outcome of a replay: how much was replayed, and every difference found."""

    run_id: str
    steps: int = 0
    events: int = 0
    differences: list[Difference] = field(default_factory=list)
    skipped: str | None = None

    @property
    def identical(self) -> bool:
        """True when the engine produced exactly the recorded events."""
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready data: what ``awe replay --json`` prints and the gateway answers."""
        return {
            "run_id": self.run_id,
            "steps": self.steps,
            "events": self.events,
            "identical": self.identical,
            "skipped": self.skipped,
            "differences": [
                {
                    "step": d.step,
                    "cause": d.cause,
                    "seq": d.seq,
                    "what": d.what,
                    "recorded": _plain(d.recorded),
                    "replayed": _plain(d.replayed),
                }
                for d in self.differences
            ],
        }


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def replay(events: list[Envelope]) -> ReplayReport:
    """Replay a run from its recorded events (in seq order) and report every difference."""
    if not events:
        raise ValueError("nothing to replay: no events")
    # Compared as the current engine reads them: events written at older versions are upcast first.
    events = [upcast(e) for e in events]
    report = ReplayReport(run_id=events[0].run_id, events=len(events))
    if events[0].type == "RunRejected":
        report.skipped = "the run was rejected before it started: there is no step to replay"
        return report
    state = RunState(run_id=report.run_id)
    for number, step in enumerate(_steps(events), start=1):
        report.steps = number
        inbound = _inbound(state, step)
        decision = decide(state, inbound)
        report.differences.extend(_compare(number, step, decision.events))
        for event in step:
            state = evolve(state, event)
    return report


def _steps(events: list[Envelope]) -> list[list[Envelope]]:
    steps: list[list[Envelope]] = []
    for event in events:
        if steps and (steps[-1][0].causation_id, steps[-1][0].time) == (event.causation_id, event.time):
            steps[-1].append(event)
        else:
            steps.append([event])
    return steps


def _inbound(state: RunState, step: list[Envelope]) -> Inbound:
    first = step[0]
    now = first.time.timestamp()
    cause = first.causation_id or ""
    message: Message
    if first.type == "RunStarted":
        p = first.payload
        definition = WorkflowDefinition.model_validate(p["definition"])
        fork = None
        if p.get("parent_run_id"):
            reused = {e.payload["node_id"]: e.payload.get("output") for e in step if e.payload.get("reused_from")}
            fork = ForkOf(parent_run_id=p["parent_run_id"], from_node=p["forked_from_node"], reused=reused)
        message = StartRun(
            run_id=first.run_id,
            tenant_id=first.tenant_id,
            workflow=p["workflow"],
            version=p["version"],
            inputs=p["inputs"],
            command_id=cause,
            correlation_id=first.correlation_id,
            principal=first.principal,
            definition=definition if fork else None,
            fork=fork,
        )
        return Inbound(message=message, now=now, definition=definition, version=p["version"])
    if first.type == "RunForked":
        p = first.payload
        message = NoteFork(
            run_id=first.run_id,
            tenant_id=first.tenant_id,
            child_run_id=p["child_run_id"],
            from_node=p["from_node"],
            command_id=p["command_id"],
            principal=first.principal,
        )
        return Inbound(message=message, now=now)
    if first.type == "SignalReceived":
        p = first.payload
        message = SignalRun(
            run_id=first.run_id,
            tenant_id=first.tenant_id,
            node=p["node_id"],
            data=p["data"],
            command_id=p["command_id"],
            principal=first.principal,
        )
    elif first.type == "RunCancelled":
        message = CancelRun(
            run_id=first.run_id,
            tenant_id=first.tenant_id,
            reason=first.payload.get("reason"),
            command_id=cause,
            principal=first.principal,
        )
    elif _TIMER.match(cause):
        timer = state.timers.get(cause)
        # It fired on time in the recording (it changed the run); the log's microseconds must not make it early.
        fired_at = max(now, timer.fire_at) if timer is not None else now
        message = TimerFired(run_id=first.run_id, tenant_id=first.tenant_id, timer_id=cause, fired_at=fired_at)
    else:
        message = _result(first, cause, step)
    return Inbound(message=message, now=now)


def _result(first: Envelope, task_id: str, step: list[Envelope]) -> TaskResult:
    """The executor result that led to a step, rebuilt from what the step recorded about its node."""
    _, node_id, attempt_text = task_id.rsplit(":", 2)
    attempt = int(attempt_text)
    mine = [e for e in step if e.payload.get("node_id") == node_id and e.payload.get("attempt") == attempt]
    call: AICall | None = None
    outcome: dict[str, Any] = {"ok": False}
    for event in mine:
        p = event.payload
        if event.type == "AICallRecorded":
            fields = {k: v for k, v in p.items() if k not in ("node_id", "attempt", "workflow")}
            call = AICall.model_validate(fields)
        elif event.type == "NodeSucceeded":
            outcome = {"ok": True, "output": p.get("output"), "duration_ms": p.get("duration_ms") or 0.0}
            break
        elif event.type in ("NodeRetrying", "NodeFailed"):
            outcome = {"ok": False, "error": ErrorInfo.model_validate(p["error"])}
            break
    return TaskResult(
        task_id=task_id,
        run_id=first.run_id,
        tenant_id=first.tenant_id,
        node_id=node_id,
        attempt=attempt,
        call=call,
        **outcome,
    )


def _compare(number: int, recorded: list[Envelope], replayed: list[Envelope]) -> list[Difference]:
    cause = recorded[0].causation_id or "?"
    out: list[Difference] = []
    for index in range(max(len(recorded), len(replayed))):
        old = recorded[index] if index < len(recorded) else None
        new = replayed[index] if index < len(replayed) else None
        if old is None and new is not None:
            out.append(Difference(number, cause, new.seq, "an event the recording does not have", None, new.type))
            continue
        if new is None and old is not None:
            out.append(Difference(number, cause, old.seq, "an event the replay did not produce", old.type, None))
            continue
        assert old is not None and new is not None
        for name in _FIELDS:
            a, b = getattr(old, name), getattr(new, name)
            if a != b:
                out.append(Difference(number, cause, old.seq, name, a, b))
        out.extend(
            Difference(number, cause, old.seq, f"{old.type} payload.{path}", a, b)
            for path, a, b in _diff(old.payload, new.payload)
        )
    return out


def _diff(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Where two JSON values differ, as (path, a, b), down to the first level that differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                out.append((sub, a.get(key), b.get(key)))
            else:
                out.extend(_diff(a[key], b[key], sub))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path or "(value)", a, b)]
