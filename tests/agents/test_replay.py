"""Replay from the log: runs driven through ``decide`` by hand replay identically, and a changed rule is
reported where it changes the events, readably."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.replay import replay
from schemas.definition import RetryPolicy
from schemas.envelope import Envelope
from tests.agents.test_decide import T0, Run
from tests.agents.test_decide_ai import ai, answer

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _busy_run() -> Run:
    run = Run(
        {
            "fetch": {"kind": "http", "url": "http://x/{{ inputs.n }}", "retry": {"max_attempts": 3}, "timeout": "2s"},
            "ask": ai(["fetch"], prompt="{{ nodes.fetch.output }}", fallback=[{"provider": "echo", "model": "e"}]),
            "nap": {"kind": "sleep", "duration": "1s", "depends_on": ["fetch"]},
            "ok": {"kind": "approval", "depends_on": ["ask", "nap"], "timeout": "1h"},
            "out": {"kind": "transform", "output": "{{ nodes.ask.output.text }}!", "depends_on": ["ok"]},
        },
        inputs={"n": {"type": "integer", "default": 7}},
    )
    run.start()
    run.fail("fetch", "http_503", retryable=True, retry_after=0.25, at=T0 + 0.123456789)
    run.fire("retry:fetch:1")
    run.fire("timeout:fetch:2")  # the second attempt timed out
    run.fire("retry:fetch:2")
    run.ok("fetch", {"status": 200}, at=run.now + 0.5)
    run.fail("ask", "rate_limited", retryable=True)
    run.fire(f"retry:ask:{run.attempt('ask')}")
    answer(run, "ask")
    run.fire("sleep:nap:1")
    run.signal("ok", {"approve": True}, at=run.now + 3)
    assert run.status() == "succeeded", run.state
    return run


def test_a_run_with_retries_timeouts_ai_timers_and_a_signal_replays_identically() -> None:
    run = _busy_run()
    report = replay(run.events)
    assert report.identical, [d.describe() for d in report.differences]
    assert report.events == len(run.events) and report.steps >= 10


def test_a_cancelled_run_replays_identically() -> None:
    run = Run({"a": {"kind": "http", "url": "http://x"}, "b": {"kind": "sleep", "duration": "5s"}})
    run.start()
    run.cancel(at=T0 + 1)
    assert replay(run.events).identical


def test_a_changed_rule_is_reported_where_it_changes_the_events(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _busy_run().events
    original = RetryPolicy.delay
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: original(self, attempt) + 10)
    report = replay(events)
    assert not report.identical
    lines = [d.describe() for d in report.differences]
    assert all("NodeRetrying payload.retry_at" in line for line in lines), lines
    assert lines[0].startswith("step 2 (run-1:fetch:1), seq ")


def test_golden_logs_of_real_runs_replay_identically() -> None:
    logs = sorted(GOLDEN.glob("*.jsonl"))
    assert logs, "golden logs are committed under tests/golden"
    for path in logs:
        events = [Envelope.model_validate(json.loads(line)) for line in path.read_text().splitlines() if line]
        report = replay(events)
        assert report.identical, (path.name, [d.describe() for d in report.differences])
