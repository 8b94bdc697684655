"""The timer wheel indexes the pending timers of the runs' states, and forgets those a run no longer has."""

from __future__ import annotations

from agents.timers import COMPACT_ABOVE, TimerWheel
from schemas.state import RunState, Timer, timer_id


def timer(node: str, fire_at: float, kind: str = "timeout", attempt: int = 1) -> Timer:
    return Timer(timer_id=timer_id(kind, node, attempt), node_id=node, kind=kind, attempt=attempt, fire_at=fire_at)


def state(run_id: str, *timers: Timer, status: str = "running") -> RunState:
    return RunState(run_id=run_id, tenant_id="acme", status=status, timers={t.timer_id: t for t in timers})


def test_a_pending_timer_fires_once_when_due() -> None:
    wheel = TimerWheel()
    wheel.track(state("r1", timer("a", 10.0)))
    assert wheel.pop_due(9.9) == []
    assert wheel.pop_due(10.0) == [("r1", "acme", timer_id("timeout", "a", 1))]
    assert wheel.pop_due(100.0) == []
    assert len(wheel) == 0


def test_a_timer_the_run_no_longer_has_never_fires() -> None:
    wheel = TimerWheel()
    wheel.track(state("r1", timer("a", 10.0), timer("b", 20.0)))
    wheel.track(state("r1", timer("b", 20.0)))  # node a ended in time
    assert len(wheel) == 1
    assert wheel.pop_due(100.0) == [("r1", "acme", timer_id("timeout", "b", 1))]


def test_an_ended_run_fires_none_of_its_timers() -> None:
    wheel = TimerWheel()
    wheel.track(state("r1", timer("a", 10.0)))
    wheel.track(state("r1", timer("a", 10.0), status="cancelled"))
    assert len(wheel) == 0
    assert wheel.pop_due(100.0) == []


def test_a_timer_moved_to_another_time_fires_at_the_new_time_only() -> None:
    wheel = TimerWheel()
    wheel.track(state("r1", timer("a", 10.0)))
    wheel.track(state("r1", timer("a", 30.0)))
    assert len(wheel) == 1
    assert wheel.pop_due(20.0) == []
    assert wheel.pop_due(30.0) == [("r1", "acme", timer_id("timeout", "a", 1))]


def test_rebuild_indexes_the_live_runs_timers_only() -> None:
    wheel = TimerWheel()
    wheel.track(state("old", timer("a", 5.0)))
    wheel.rebuild([state("r1", timer("a", 10.0)), state("r2", timer("b", 10.0), status="succeeded")])
    assert wheel.pop_due(100.0) == [("r1", "acme", timer_id("timeout", "a", 1))]


def test_forgotten_timers_do_not_pile_up_in_the_heap() -> None:
    wheel = TimerWheel()
    for i in range(10 * COMPACT_ABOVE):
        run = f"r{i}"
        wheel.track(state(run, timer("a", 1_000.0 + i)))
        wheel.track(state(run, status="succeeded"))
    assert len(wheel) == 0
    assert len(wheel._heap) <= COMPACT_ABOVE + 1
