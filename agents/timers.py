"""Durable timers: due times live in the run state (and so in its changelog); this wheel only indexes them.

The wheel is rebuilt from the runs table whenever partitions are reassigned, so a timer armed before a
worker died fires on whichever worker owns the run next. Firing produces ``TimerFired`` to ``awe.results``;
a timer fired twice is harmless, because ``decide`` drops a timer id that is no longer pending.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.state import RunState

#: Stale heap entries (of forgotten timers) tolerated beyond twice the live ones before the heap is rebuilt.
COMPACT_ABOVE = 1024


@dataclass(order=True, frozen=True, slots=True)
class _Entry:
    fire_at: float
    run_id: str = field(compare=False)
    tenant_id: str = field(compare=False)
    timer_id: str = field(compare=False)


class TimerWheel:
    """A min-heap of the pending timers of the runs this worker owns.

    A timer the run no longer has (its node ended first, an approval was answered, the run ended) is
    forgotten when the run's state says so (``track``): without that, every node with a ``timeout`` that
    finished in time still fired once later, one more record on ``awe.results`` that ``decide`` dropped.
    Its heap entry stays until due or until stale entries outnumber live ones, and is then skipped.
    """

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        #: run id -> timer id -> due time, of the timers that are to fire.
        self._armed: dict[str, dict[str, float]] = {}
        self._live = 0

    def __len__(self) -> int:
        """The timers that are to fire."""
        return self._live

    def track(self, state: RunState) -> None:
        """Index the run's pending timers and forget the ones it no longer has (none once it has ended)."""
        pending = {} if state.terminal else state.timers
        armed = self._armed.get(state.run_id)
        if armed is None:
            if not pending:
                return
            armed = self._armed[state.run_id] = {}
        for timer_id in [t for t in armed if t not in pending]:
            del armed[timer_id]
            self._live -= 1
        for timer_id, timer in pending.items():
            if armed.get(timer_id) != timer.fire_at:
                self._live += timer_id not in armed
                armed[timer_id] = timer.fire_at
                heapq.heappush(self._heap, _Entry(timer.fire_at, state.run_id, state.tenant_id, timer_id))
        if not armed:
            del self._armed[state.run_id]
        if len(self._heap) > 2 * self._live + COMPACT_ABOVE:
            self._heap = [e for e in self._heap if self._is_armed(e)]
            heapq.heapify(self._heap)

    def rebuild(self, states: Iterable[RunState]) -> None:
        """Forget everything and index the timers of the given runs (after a rebalance)."""
        self._heap.clear()
        self._armed.clear()
        self._live = 0
        for state in states:
            self.track(state)

    def pop_due(self, now: float) -> list[tuple[str, str, str]]:
        """Remove and return ``(run_id, tenant_id, timer_id)`` of every timer due at ``now``."""
        due = []
        while self._heap and self._heap[0].fire_at <= now:
            entry = heapq.heappop(self._heap)
            if not self._is_armed(entry):
                continue
            armed = self._armed[entry.run_id]
            del armed[entry.timer_id]
            self._live -= 1
            if not armed:
                del self._armed[entry.run_id]
            due.append((entry.run_id, entry.tenant_id, entry.timer_id))
        return due

    def _is_armed(self, entry: _Entry) -> bool:
        return self._armed.get(entry.run_id, {}).get(entry.timer_id) == entry.fire_at
