"""Durable timers: due times live in the run state (and so in its changelog); this wheel only indexes them.

The wheel is rebuilt from the runs table whenever partitions are reassigned, so a timer armed before a
worker died fires on whichever worker owns the run next. Firing produces ``TimerFired`` to ``awe.results``;
a timer fired twice is harmless, because ``decide`` drops a timer id that is no longer pending.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.state import RunState, Timer


@dataclass(order=True, frozen=True, slots=True)
class _Entry:
    fire_at: float
    run_id: str = field(compare=False)
    tenant_id: str = field(compare=False)
    timer_id: str = field(compare=False)


class TimerWheel:
    """A min-heap of pending timers of the runs this worker owns."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._armed: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def arm(self, run_id: str, tenant_id: str, timers: Iterable[Timer]) -> None:
        """Index timers that a decision armed."""
        for t in timers:
            key = (run_id, t.timer_id)
            if key not in self._armed:
                self._armed.add(key)
                heapq.heappush(self._heap, _Entry(t.fire_at, run_id, tenant_id, t.timer_id))

    def rebuild(self, states: Iterable[RunState]) -> None:
        """Forget everything and index the timers of the given runs (after a rebalance)."""
        self._heap.clear()
        self._armed.clear()
        for state in states:
            if not state.terminal:
                self.arm(state.run_id, state.tenant_id, state.timers.values())

    def pop_due(self, now: float) -> list[tuple[str, str, str]]:
        """Remove and return ``(run_id, tenant_id, timer_id)`` of every timer due at ``now``."""
        due = []
        while self._heap and self._heap[0].fire_at <= now:
            entry = heapq.heappop(self._heap)
            self._armed.discard((entry.run_id, entry.timer_id))
            due.append((entry.run_id, entry.tenant_id, entry.timer_id))
        return due
