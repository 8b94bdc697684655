"""The audit trail of a run: for each AI decision, the chain of causes back to the command that started it.

Every event names its cause (``causation_id``): the command, the task whose result it records, or the
timer that fired. Following those links back from an ``AICallRecorded`` event gives the path from who
asked (the principal of the start command) to what the model was asked and answered. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.envelope import Envelope

_TIMER = re.compile(r"^(retry|timeout|sleep|deadline):(.+):(\d+)$")


@dataclass(frozen=True)
class Decision:
    """One AI decision and the events that led to it, oldest first (the first is the run's start)."""

    call: Envelope
    chain: list[Envelope]


def decisions(events: list[Envelope]) -> list[Decision]:
    """Every ``AICallRecorded`` of a run (its events in seq order) with its chain of causes."""
    scheduled = {e.payload["task_id"]: e for e in events if e.type == "NodeScheduled"}
    first_of_cause: dict[str, Envelope] = {}
    for event in events:
        if event.causation_id is not None:
            first_of_cause.setdefault(event.causation_id, event)

    def origin(event: Envelope) -> Envelope | None:
        cause = event.causation_id
        if cause is None:
            return None
        if cause in scheduled and scheduled[cause].seq < event.seq:
            return scheduled[cause]
        timer = _TIMER.match(cause)
        if timer is not None:
            return _armed_by(events, event, timer.group(1), timer.group(2), int(timer.group(3)))
        first = first_of_cause.get(cause)
        return first if first is not None and first.seq < event.seq else None

    found = []
    for event in events:
        if event.type != "AICallRecorded":
            continue
        chain = [event]
        cause = origin(event)
        while cause is not None:
            chain.append(cause)
            cause = origin(cause)
        found.append(Decision(call=event, chain=list(reversed(chain))))
    return found


def _armed_by(events: list[Envelope], fired: Envelope, kind: str, node: str, attempt: int) -> Envelope | None:
    """The event that armed a timer: the retry, the scheduled attempt (timeout), or the wait."""
    wanted = {"retry": "NodeRetrying", "timeout": "NodeScheduled"}.get(kind, "RunWaiting")
    for event in reversed(events[: fired.seq - 1]):
        same_attempt = wanted == "RunWaiting" or event.payload.get("attempt") == attempt
        if event.type == wanted and event.payload.get("node_id") == node and same_attempt:
            return event
    return None
