"""``decide`` and ``evolve`` by example: one test per node kind and per rule of the run state machine.

Pure: every test builds messages by hand and calls ``decide`` directly; no broker, no clock, no I/O.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agents.decide import MAX_RETRY_AFTER_S, decide, reject
from agents.messages import Decision, Inbound, Message
from schemas.commands import CancelRun, SignalRun, StartRun
from schemas.definition import WorkflowDefinition
from schemas.envelope import Envelope, event_id_for, timestamp
from schemas.errors import ErrorInfo
from schemas.events import EVENT_TYPES
from schemas.exceptions import SequenceGapError
from schemas.state import RunState, evolve, fold, run_view, timer_id
from schemas.tasks import Task, TaskResult, TimerFired
from schemas.validation import validate_definition

RUN = "run-1"
TENANT = "acme"
T0 = 1_700_000_000.0
GOLDEN = Path(__file__).resolve().parent / "golden"


def workflow(nodes: dict[str, Any], **extra: Any) -> WorkflowDefinition:
    return validate_definition({"name": "wf", "nodes": nodes, **extra})


class Run:
    """Drives one run through ``decide`` by hand, keeping its state, its events and the clock."""

    def __init__(self, nodes: dict[str, Any], **extra: Any) -> None:
        self.definition = workflow(nodes, **extra)
        self.state = RunState(run_id=RUN)
        self.events: list[Envelope] = []
        self.inbounds: list[Inbound] = []
        self.now = T0

    def send(
        self,
        message: Message,
        *,
        at: float | None = None,
        definition: WorkflowDefinition | None = None,
        version: int | None = None,
    ) -> Decision:
        if at is not None:
            assert at >= self.now, "the simulated clock only moves forward"
            self.now = at
        inbound = Inbound(message=message, now=self.now, definition=definition, version=version)
        self.inbounds.append(inbound)
        decision = decide(self.state, inbound)
        self.state = decision.state
        self.events.extend(decision.events)
        return decision

    def start(self, inputs: dict[str, Any] | None = None, **command: Any) -> Decision:
        fields: dict[str, Any] = {
            "run_id": RUN,
            "tenant_id": TENANT,
            "workflow": "wf",
            "command_id": "start-1",
        }
        message = StartRun(**{**fields, "inputs": inputs or {}, **command})
        return self.send(message, definition=self.definition, version=1)

    def status(self, node_id: str | None = None) -> str:
        """The run's status, or a node's (as plain ``str``, so successive checks do not narrow it)."""
        return self.state.status if node_id is None else self.state.nodes[node_id].status

    def attempt(self, node_id: str) -> int:
        return self.state.nodes[node_id].attempts

    def ok(self, node_id: str, output: Any = None, *, attempt: int | None = None, at: float | None = None) -> Decision:
        n = attempt or self.attempt(node_id)
        result = TaskResult(
            task_id=f"{RUN}:{node_id}:{n}",
            run_id=RUN,
            tenant_id=TENANT,
            node_id=node_id,
            attempt=n,
            ok=True,
            output=output,
            duration_ms=12.5,
        )
        return self.send(result, at=at)

    def fail(
        self,
        node_id: str,
        code: str = "boom",
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        attempt: int | None = None,
        at: float | None = None,
    ) -> Decision:
        n = attempt or self.attempt(node_id)
        error = ErrorInfo(code=code, message=f"{code}!", retryable=retryable, retry_after=retry_after)
        result = TaskResult(
            task_id=f"{RUN}:{node_id}:{n}",
            run_id=RUN,
            tenant_id=TENANT,
            node_id=node_id,
            attempt=n,
            ok=False,
            error=error,
        )
        return self.send(result, at=at)

    def fire(self, timer: str, *, at: float | None = None) -> Decision:
        """Fire a timer at its due time (or at ``at``); a timer no longer armed fires at the current time."""
        armed = self.state.timers.get(timer)
        when = at if at is not None else max(self.now, armed.fire_at if armed else self.now)
        return self.send(TimerFired(run_id=RUN, tenant_id=TENANT, timer_id=timer, fired_at=when), at=when)

    def signal(self, node: str, data: Any, *, command_id: str = "sig-1", at: float | None = None) -> Decision:
        return self.send(SignalRun(run_id=RUN, tenant_id=TENANT, node=node, data=data, command_id=command_id), at=at)

    def cancel(self, reason: str | None = "user asked", *, at: float | None = None) -> Decision:
        return self.send(CancelRun(run_id=RUN, tenant_id=TENANT, reason=reason, command_id="cancel-1"), at=at)


def types(decision: Decision) -> list[str]:
    return [e.type for e in decision.events]


def payload(decision: Decision, event_type: str) -> dict[str, Any]:
    """The payload of the one event of ``event_type`` in the decision."""
    found = [e.payload for e in decision.events if e.type == event_type]
    assert len(found) == 1, f"expected one {event_type} in {types(decision)}"
    return found[0]


def payloads(events: list[Envelope], event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in events if e.type == event_type]


def assert_ignored(run: Run, message: Message, at: float | None = None) -> None:
    before = run.state
    decision = run.send(message, at=at)
    assert decision.events == [] and decision.tasks == [] and decision.timers == []
    assert decision.state == before


def http(url: str = "https://svc.test/x", **fields: Any) -> dict[str, Any]:
    return {"kind": "http", "url": url, **fields}


def transform(output: Any, *deps: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "transform", "output": output, "depends_on": list(deps), **fields}


# --- starting a run -----------------------------------------------------------------------------------


def test_a_transform_chain_runs_inside_one_decision() -> None:
    run = Run(
        {
            "a": transform({"n": "{{ inputs.n }}"}),
            "b": transform("{{ nodes.a.output.n * 2 }}", "a"),
            "c": transform(
                {"sum": "{{ nodes.a.output.n + nodes.b.output }}", "text": "b={{ nodes.b.output }}"}, "b", "a"
            ),
        },
        inputs={"n": {"type": "integer", "required": True}},
        outputs={"c": "{{ nodes.c.output }}", "run": "{{ run.id }}/{{ run.workflow }}/{{ run.version }}"},
    )
    decision = run.start({"n": 21.0})
    assert types(decision) == [
        "RunStarted",
        "NodeSucceeded",
        "NodeSucceeded",
        "NodeSucceeded",
        "RunSucceeded",
    ]
    assert [p["node_id"] for p in payloads(decision.events, "NodeSucceeded")] == ["a", "b", "c"]
    assert payload(decision, "RunStarted")["inputs"] == {"n": 21}
    assert run.state.nodes["b"].output == 42
    assert run.state.nodes["c"].output == {"sum": 63, "text": "b=42"}
    assert payload(decision, "RunSucceeded")["outputs"] == {
        "c": {"sum": 63, "text": "b=42"},
        "run": "run-1/wf/1",
    }
    assert run.state.status == "succeeded" and run.state.outputs == {
        "c": {"sum": 63, "text": "b=42"},
        "run": "run-1/wf/1",
    }
    assert decision.tasks == [] and decision.timers == [] and run.state.timers == {}


def test_nodes_start_in_topological_order_not_declaration_order() -> None:
    run = Run({"late": transform(1, "early"), "early": transform(2)})
    decision = run.start()
    assert [p["node_id"] for p in payloads(decision.events, "NodeSucceeded")] == ["early", "late"]


def test_input_defaults_are_applied_and_recorded() -> None:
    run = Run(
        {"a": transform("{{ inputs.items | length }}")},
        inputs={"items": {"type": "array", "default": [1, 2, 3]}, "name": {"type": "string"}},
    )
    decision = run.start()
    assert payload(decision, "RunStarted")["inputs"] == {"items": [1, 2, 3], "name": None}
    assert run.state.nodes["a"].output == 3


def test_map_keeps_the_order_of_its_items() -> None:
    run = Run(
        {
            "src": transform(["d", "a", "c", "b"]),
            "m": {
                "kind": "map",
                "over": "{{ nodes.src.output }}",
                "node": {"kind": "transform", "output": {"v": "{{ item | upper }}", "i": "{{ index }}"}},
                "depends_on": ["src"],
            },
        },
        outputs={"firsts": "{{ nodes.m.output | map(attribute='v') | join('') }}"},
    )
    run.start()
    assert run.state.nodes["m"].output == [
        {"v": "D", "i": 0},
        {"v": "A", "i": 1},
        {"v": "C", "i": 2},
        {"v": "B", "i": 3},
    ]
    assert run.state.outputs == {"firsts": "DACB"}


def test_map_over_an_empty_list_gives_an_empty_list() -> None:
    run = Run({"m": {"kind": "map", "over": "{{ [] }}", "node": {"kind": "transform", "output": "{{ item }}"}}})
    run.start()
    assert run.state.nodes["m"].status == "succeeded" and run.state.nodes["m"].output == []


def test_map_over_something_that_is_not_a_list_fails_the_node() -> None:
    run = Run({"m": {"kind": "map", "over": "{{ 'abc' }}", "node": {"kind": "transform", "output": "{{ item }}"}}})
    decision = run.start()
    assert types(decision) == ["RunStarted", "NodeFailed", "RunFailed"]
    error = payload(decision, "NodeFailed")["error"]
    assert error["code"] == "template_error" and error["retryable"] is False
    assert "must give a list" in error["message"]


def test_unknown_workflow_is_rejected() -> None:
    run = Run({"a": transform(1)})
    decision = run.send(StartRun(run_id=RUN, tenant_id=TENANT, workflow="nope", version=3, command_id="start-1"))
    assert types(decision) == ["RunRejected"]
    rejected = payload(decision, "RunRejected")
    assert rejected["code"] == "unknown_workflow" and "nope version 3" in rejected["message"]
    assert run.state.status == "rejected" and run.state.terminal
    assert run.state.error is not None and run.state.error.code == "unknown_workflow"
    assert decision.events[0].tenant_id == TENANT and decision.events[0].causation_id == "start-1"


def test_a_definition_without_a_version_is_an_unknown_workflow() -> None:
    run = Run({"a": transform(1)})
    start = StartRun(run_id=RUN, tenant_id=TENANT, workflow="wf", command_id="s")
    decision = run.send(start, definition=run.definition, version=None)
    assert payload(decision, "RunRejected")["code"] == "unknown_workflow"


def test_invalid_inputs_are_rejected_with_every_problem() -> None:
    run = Run(
        {"a": transform("{{ inputs.n }}")},
        inputs={"n": {"type": "integer", "required": True}, "flag": {"type": "boolean"}},
    )
    decision = run.start({"flag": "yes", "extra": 1})
    assert types(decision) == ["RunRejected"]
    rejected = payload(decision, "RunRejected")
    assert rejected["code"] == "invalid_inputs"
    paths = sorted(p["path"] for p in rejected["problems"])
    assert paths == ["inputs.extra", "inputs.flag", "inputs.n"]
    assert run.state.status == "rejected"
    assert run.state.error is not None and run.state.error.detail == rejected["problems"]
    assert decision.tasks == [] and run.state.nodes == {}


def test_a_duplicate_start_is_ignored() -> None:
    run = Run({"a": http()})
    run.start()
    assert_ignored(run, StartRun(run_id=RUN, tenant_id=TENANT, workflow="wf", command_id="start-1"))
    before = run.state
    again = run.send(
        StartRun(run_id=RUN, tenant_id=TENANT, workflow="wf", command_id="start-2"),
        definition=run.definition,
        version=1,
    )
    assert again.events == [] and again.tasks == [] and again.state == before


def test_a_start_after_a_rejection_is_ignored() -> None:
    run = Run({"a": transform(1)})
    run.send(StartRun(run_id=RUN, tenant_id=TENANT, workflow="nope", command_id="s1"))
    again = run.send(
        StartRun(run_id=RUN, tenant_id=TENANT, workflow="wf", command_id="s2"),
        definition=run.definition,
        version=1,
    )
    assert again.events == [] and run.state.status == "rejected"


def test_messages_for_a_run_that_never_started_are_ignored() -> None:
    run = Run({"a": http(), "ap": {"kind": "approval"}})
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id="default", node="ap", data={"approve": True}))
    assert_ignored(run, CancelRun(run_id=RUN, tenant_id="default"))
    assert_ignored(run, TimerFired(run_id=RUN, tenant_id="default", timer_id="sleep:a:1", fired_at=T0))
    assert_ignored(
        run,
        TaskResult(task_id=f"{RUN}:a:1", run_id=RUN, tenant_id="default", node_id="a", attempt=1, ok=True),
    )
    assert run.state == RunState(run_id=RUN) and run.events == []


def test_messages_from_another_tenant_are_ignored() -> None:
    run = Run({"a": http(timeout=5), "ap": {"kind": "approval", "depends_on": ["a"]}})
    run.start()
    other = "intruder"
    assert_ignored(run, TaskResult(task_id=f"{RUN}:a:1", run_id=RUN, tenant_id=other, node_id="a", attempt=1, ok=True))
    assert_ignored(run, TimerFired(run_id=RUN, tenant_id=other, timer_id="timeout:a:1", fired_at=T0 + 5), at=T0 + 5)
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id=other, node="ap", data={"approve": True}))
    assert_ignored(run, CancelRun(run_id=RUN, tenant_id=other))
    assert_ignored(run, StartRun(run_id=RUN, tenant_id=other, workflow="wf"))
    assert run.state.signals == {} and run.state.status == "running"
    # The run's own tenant still gets through.
    assert types(run.ok("a", {"x": 1})) == ["NodeSucceeded", "RunWaiting"]


# --- http tasks -----------------------------------------------------------------------------------------


def test_an_http_node_is_scheduled_with_its_params_rendered() -> None:
    run = Run(
        {
            "prep": transform({"id": 7, "tags": ["a", "b"]}),
            "call": http(
                "https://svc.test/items/{{ nodes.prep.output.id }}?run={{ run.id }}",
                method="post",
                headers={"X-Tenant": "{{ run.tenant }}", "X-Static": "yes"},
                body={"tags": "{{ nodes.prep.output.tags }}", "name": "{{ inputs.name }}", "n": 3},
                query={"q": "{{ inputs.name | upper }}"},
                timeout="2.5s",
                depends_on=["prep"],
                description="not a param",
            ),
        },
        inputs={"name": {"type": "string", "required": True}},
    )
    decision = run.start({"name": "ada"}, correlation_id="corr-9")
    assert types(decision) == ["RunStarted", "NodeSucceeded", "NodeScheduled"]
    assert decision.tasks == [
        Task(
            task_id=f"{RUN}:call:1",
            run_id=RUN,
            tenant_id=TENANT,
            node_id="call",
            kind="http",
            attempt=1,
            params={
                "method": "POST",
                "url": "https://svc.test/items/7?run=run-1",
                "headers": {"X-Tenant": "acme", "X-Static": "yes"},
                "body": {"tags": ["a", "b"], "name": "ada", "n": 3},
                "query": {"q": "ADA"},
            },
            timeout=2.5,
            correlation_id="corr-9",
        )
    ]
    scheduled = payload(decision, "NodeScheduled")
    assert scheduled == {
        "node_id": "call",
        "kind": "http",
        "attempt": 1,
        "task_id": f"{RUN}:call:1",
        "deadline": T0 + 2.5,
    }
    timeout = timer_id("timeout", "call", 1)
    assert [t.model_dump() for t in decision.timers] == [
        {"timer_id": timeout, "node_id": "call", "kind": "timeout", "attempt": 1, "fire_at": T0 + 2.5}
    ]
    assert set(run.state.timers) == {timeout}
    node = run.state.nodes["call"]
    assert (node.status, node.attempts, node.task_id) == ("scheduled", 1, f"{RUN}:call:1")
    assert run.state.status == "running"


def test_an_http_node_without_timeout_arms_no_timer() -> None:
    run = Run({"call": http()})
    decision = run.start()
    assert payload(decision, "NodeScheduled")["deadline"] is None
    assert decision.timers == [] and run.state.timers == {}
    assert decision.tasks[0].timeout is None


def test_independent_http_nodes_are_scheduled_together() -> None:
    run = Run({"a": http(), "b": http(), "c": transform(1, "a", "b")})
    decision = run.start()
    assert [t.node_id for t in decision.tasks] == ["a", "b"]


def test_a_successful_result_records_the_output_and_starts_the_next_nodes() -> None:
    run = Run(
        {
            "a": http(timeout=5),
            "b": transform("{{ nodes.a.output.body.n + 1 }}", "a"),
            "c": http("https://svc.test/{{ nodes.b.output }}", depends_on=["b"]),
        }
    )
    run.start()
    decision = run.ok("a", {"status": 200, "body": {"n": 41}}, at=T0 + 1)
    assert types(decision) == ["NodeSucceeded", "NodeSucceeded", "NodeScheduled"]
    succeeded = payloads(decision.events, "NodeSucceeded")
    assert succeeded[0] == {
        "node_id": "a",
        "attempt": 1,
        "output": {"status": 200, "body": {"n": 41}},
        "duration_ms": 12.5,
    }
    assert succeeded[1]["output"] == 42
    assert [t.params["url"] for t in decision.tasks] == ["https://svc.test/42"]
    assert run.state.timers == {}, "the timeout of a finished attempt is disarmed"
    decision = run.ok("c", "done", at=T0 + 2)
    assert types(decision) == ["NodeSucceeded", "RunSucceeded"]
    assert run.state.status == "succeeded"


def test_a_retryable_error_schedules_a_retry_after_the_initial_delay() -> None:
    run = Run({"a": http(retry={"max_attempts": 3, "initial_delay": "1.5s", "max_delay": "10s"}, timeout=5)})
    run.start()
    decision = run.fail("a", "unavailable", retryable=True, at=T0 + 2)
    assert types(decision) == ["NodeRetrying"]
    retrying = payload(decision, "NodeRetrying")
    assert retrying["attempt"] == 1 and retrying["retry_at"] == T0 + 3.5
    assert retrying["error"]["code"] == "unavailable" and retrying["error"]["retryable"] is True
    retry = timer_id("retry", "a", 1)
    assert [t.timer_id for t in decision.timers] == [retry]
    assert set(run.state.timers) == {retry}, "the attempt's timeout timer is disarmed"
    assert run.state.timers[retry].fire_at == T0 + 3.5
    node = run.state.nodes["a"]
    assert node.status == "retrying" and node.error is not None and node.error.code == "unavailable"
    assert decision.tasks == []
    # The retry timer starts attempt 2, with a fresh task id and a fresh timeout.
    decision = run.fire(retry)
    assert run.now == T0 + 3.5
    assert types(decision) == ["NodeScheduled"]
    assert [(t.task_id, t.attempt) for t in decision.tasks] == [(f"{RUN}:a:2", 2)]
    assert set(run.state.timers) == {timer_id("timeout", "a", 2)}
    assert run.state.timers[timer_id("timeout", "a", 2)].fire_at == T0 + 8.5
    assert types(run.ok("a", "fine")) == ["NodeSucceeded", "RunSucceeded"]
    assert run.state.nodes["a"].attempts == 2 and run.state.nodes["a"].error is None


def test_retry_delays_grow_exponentially_up_to_max_delay_and_honour_retry_after() -> None:
    policy = {"max_attempts": 6, "initial_delay": 1, "multiplier": 3, "max_delay": 5}
    run = Run({"a": http(retry=policy)})
    run.start()
    delays = []
    for retry_after in (None, None, None, 20.0, 0.5):
        failed_at = run.now + 0.25
        decision = run.fail("a", retryable=True, retry_after=retry_after, at=failed_at)
        retrying = payload(decision, "NodeRetrying")
        delays.append(retrying["retry_at"] - failed_at)
        run.fire(timer_id("retry", "a", retrying["attempt"]))
    # 1, 3, 9 → capped at 5, retry_after 20 wins over 5, retry_after 0.5 loses to 5.
    assert delays == [1.0, 3.0, 5.0, 20.0, 5.0]
    decision = run.fail("a", retryable=True, at=run.now + 1)
    assert types(decision) == ["NodeFailed", "RunFailed"]
    assert payload(decision, "NodeFailed")["attempt"] == 6


def test_fixed_backoff_waits_the_same_every_time() -> None:
    run = Run({"a": http(retry={"max_attempts": 3, "backoff": "fixed", "initial_delay": 2})})
    run.start()
    for attempt in (1, 2):
        decision = run.fail("a", retryable=True, at=run.now + 1)
        assert payload(decision, "NodeRetrying")["retry_at"] == run.now + 2
        run.fire(timer_id("retry", "a", attempt))
    assert run.state.nodes["a"].attempts == 3


def test_without_a_retry_policy_an_http_node_gets_three_attempts_with_default_backoff() -> None:
    run = Run({"a": http()})
    run.start()
    assert payload(run.fail("a", retryable=True), "NodeRetrying")["retry_at"] == T0 + 1
    run.fire(timer_id("retry", "a", 1))
    assert payload(run.fail("a", retryable=True), "NodeRetrying")["retry_at"] == run.now + 2
    run.fire(timer_id("retry", "a", 2))
    assert types(run.fail("a", retryable=True)) == ["NodeFailed", "RunFailed"]


def test_a_non_retryable_error_fails_the_node_and_the_run() -> None:
    run = Run({"a": http(timeout=5, retry={"max_attempts": 5}), "b": transform(1, "a"), "c": http()})
    run.start()
    decision = run.fail("a", "bad_request", at=T0 + 1)
    assert types(decision) == ["NodeFailed", "RunFailed"]
    failed = payload(decision, "NodeFailed")
    assert failed["node_id"] == "a" and failed["attempt"] == 1 and failed["error"]["code"] == "bad_request"
    run_failed = payload(decision, "RunFailed")
    assert run_failed["node_id"] == "a" and run_failed["error"]["code"] == "bad_request"
    assert run.state.status == "failed" and run.state.error is not None and run.state.error.code == "bad_request"
    assert run.state.timers == {} and decision.tasks == []
    assert run.state.nodes["b"].status == "pending", "nothing runs after the run failed"
    assert run.state.nodes["c"].status == "cancelled", "its task was abandoned with the run"
    assert run.state.ended_at == timestamp(T0 + 1)
    # The other node's result is now late.
    assert_ignored(run, TaskResult(task_id=f"{RUN}:c:1", run_id=RUN, tenant_id=TENANT, node_id="c", attempt=1, ok=True))


def test_a_failure_without_error_detail_is_not_retried() -> None:
    run = Run({"a": http()})
    run.start()
    decision = run.send(
        TaskResult(task_id=f"{RUN}:a:1", run_id=RUN, tenant_id=TENANT, node_id="a", attempt=1, ok=False)
    )
    assert types(decision) == ["NodeFailed", "RunFailed"]
    assert payload(decision, "NodeFailed")["error"]["code"] == "unknown"


def test_max_attempts_exhausted_fails_with_the_last_error() -> None:
    run = Run({"a": http(retry={"max_attempts": 2, "initial_delay": 1})})
    run.start()
    run.fail("a", "first", retryable=True)
    run.fire(timer_id("retry", "a", 1))
    decision = run.fail("a", "second", retryable=True)
    assert types(decision) == ["NodeFailed", "RunFailed"]
    failed = payload(decision, "NodeFailed")
    assert failed["attempt"] == 2 and failed["error"]["code"] == "second"
    assert run.state.nodes["a"].attempts == 2


def test_max_attempts_one_means_no_retry() -> None:
    run = Run({"a": http(retry={"max_attempts": 1})})
    run.start()
    decision = run.fail("a", "unavailable", retryable=True)
    assert types(decision) == ["NodeFailed", "RunFailed"]
    assert decision.timers == []


def test_an_attempt_that_times_out_is_retried_and_its_late_result_ignored() -> None:
    run = Run({"a": http(timeout=5, retry={"max_attempts": 2, "initial_delay": 1})})
    run.start()
    decision = run.fire(timer_id("timeout", "a", 1))
    assert run.now == T0 + 5
    assert types(decision) == ["NodeRetrying"]
    retrying = payload(decision, "NodeRetrying")
    assert retrying["error"]["code"] == "timeout" and retrying["error"]["retryable"] is True
    assert retrying["retry_at"] == T0 + 6
    # The first attempt answers after all: too late, whether it reports success or failure.
    assert_ignored(run, TaskResult(task_id=f"{RUN}:a:1", run_id=RUN, tenant_id=TENANT, node_id="a", attempt=1, ok=True))
    run.fire(timer_id("retry", "a", 1))
    assert run.state.nodes["a"].attempts == 2
    assert_ignored(run, TaskResult(task_id=f"{RUN}:a:1", run_id=RUN, tenant_id=TENANT, node_id="a", attempt=1, ok=True))
    # The timeout timer of attempt 1 fired twice (say, after a rebalance): harmless.
    assert_ignored(run, TimerFired(run_id=RUN, tenant_id=TENANT, timer_id=timer_id("timeout", "a", 1), fired_at=T0 + 7))
    decision = run.fire(timer_id("timeout", "a", 2))
    assert types(decision) == ["NodeFailed", "RunFailed"]
    assert payload(decision, "NodeFailed")["error"]["code"] == "timeout"


def test_a_result_after_its_timeout_was_disarmed_wins() -> None:
    run = Run({"a": http(timeout=5)})
    run.start()
    run.ok("a", 1, at=T0 + 4)
    assert_ignored(run, TimerFired(run_id=RUN, tenant_id=TENANT, timer_id="timeout:a:1", fired_at=T0 + 5), at=T0 + 5)
    assert run.state.status == "succeeded"


def test_a_duplicate_result_is_ignored() -> None:
    run = Run({"a": http(), "b": http(depends_on=["a"])})
    run.start()
    first = run.ok("a", {"v": 1})
    assert types(first) == ["NodeSucceeded", "NodeScheduled"]
    assert_ignored(run, TaskResult(task_id=f"{RUN}:a:1", run_id=RUN, tenant_id=TENANT, node_id="a", attempt=1, ok=True))
    failed = TaskResult(
        task_id=f"{RUN}:a:1",
        run_id=RUN,
        tenant_id=TENANT,
        node_id="a",
        attempt=1,
        ok=False,
        error=ErrorInfo(code="x", message="x"),
    )
    assert_ignored(run, failed)
    assert run.state.nodes["a"].output == {"v": 1}


def test_a_result_for_an_unknown_node_or_a_future_attempt_is_ignored() -> None:
    run = Run({"a": http()})
    run.start()
    assert_ignored(run, TaskResult(task_id="x", run_id=RUN, tenant_id=TENANT, node_id="ghost", attempt=1, ok=True))
    assert_ignored(run, TaskResult(task_id="x", run_id=RUN, tenant_id=TENANT, node_id="a", attempt=2, ok=True))


def test_a_retry_timer_fired_twice_schedules_one_attempt() -> None:
    run = Run({"a": http()})
    run.start()
    run.fail("a", retryable=True)
    assert len(run.fire(timer_id("retry", "a", 1)).tasks) == 1
    assert_ignored(run, TimerFired(run_id=RUN, tenant_id=TENANT, timer_id=timer_id("retry", "a", 1), fired_at=run.now))


def test_an_unknown_timer_is_ignored() -> None:
    run = Run({"a": http()})
    run.start()
    assert_ignored(run, TimerFired(run_id=RUN, tenant_id=TENANT, timer_id="retry:a:7", fired_at=T0))


# --- sleep and approval --------------------------------------------------------------------------------


def test_sleep_waits_on_a_timer_then_succeeds() -> None:
    run = Run({"s": {"kind": "sleep", "duration": "1m"}, "after": transform("{{ nodes.s.output }}", "s")})
    decision = run.start()
    assert types(decision) == ["RunStarted", "RunWaiting"]
    assert payload(decision, "RunWaiting") == {"node_id": "s", "reason": "sleep", "until": T0 + 60}
    sleep = timer_id("sleep", "s", 1)
    assert [t.timer_id for t in decision.timers] == [sleep] and run.state.timers[sleep].fire_at == T0 + 60
    assert run.status() == "waiting" and run.status("s") == "waiting"
    decision = run.fire(sleep)
    assert types(decision) == ["NodeSucceeded", "NodeSucceeded", "RunSucceeded"]
    assert payloads(decision.events, "NodeSucceeded")[0] == {
        "node_id": "s",
        "attempt": 1,
        "output": None,
        "duration_ms": None,
    }
    assert run.state.status == "succeeded" and run.state.timers == {}


def test_a_waiting_node_does_not_make_the_run_waiting_while_a_task_is_out() -> None:
    run = Run({"s": {"kind": "sleep", "duration": 5}, "a": http()})
    run.start()
    assert run.status() == "running"
    run.ok("a")
    assert run.status() == "waiting"


def test_an_approval_waits_for_its_signal_and_approves() -> None:
    run = Run(
        {"ap": {"kind": "approval", "timeout": "1h"}, "next": transform("{{ nodes.ap.output.who }}", "ap")},
        outputs={"who": "{{ nodes.next.output }}"},
    )
    decision = run.start()
    assert types(decision) == ["RunStarted", "RunWaiting"]
    assert payload(decision, "RunWaiting") == {"node_id": "ap", "reason": "approval", "until": T0 + 3600}
    assert [t.timer_id for t in decision.timers] == [timer_id("deadline", "ap", 1)]
    assert run.state.status == "waiting"
    decision = run.signal("ap", {"approve": True, "who": "grace"}, at=T0 + 10)
    assert types(decision) == ["SignalReceived", "NodeSucceeded", "NodeSucceeded", "RunSucceeded"]
    assert payload(decision, "SignalReceived") == {
        "node_id": "ap",
        "data": {"approve": True, "who": "grace"},
        "command_id": "sig-1",
    }
    assert run.state.nodes["ap"].output == {"approve": True, "who": "grace"}
    assert run.state.outputs == {"who": "grace"} and run.state.timers == {}


@pytest.mark.parametrize("data", [{"approve": False, "why": "no"}, {"approve": "yes"}, "approve", None, {}])
def test_an_approval_is_rejected_unless_approve_is_true(data: Any) -> None:
    run = Run({"ap": {"kind": "approval"}})
    run.start()
    decision = run.signal("ap", data)
    assert types(decision) == ["SignalReceived", "NodeFailed", "RunFailed"]
    error = payload(decision, "NodeFailed")["error"]
    assert error["code"] == "rejected" and error["retryable"] is False and error["detail"] == data


def test_an_approval_rejected_with_on_error_continue_lets_the_run_succeed() -> None:
    run = Run({"ap": {"kind": "approval", "on_error": "continue"}, "after": transform(1, "ap")})
    run.start()
    decision = run.signal("ap", {"approve": False})
    assert types(decision) == ["SignalReceived", "NodeFailed", "NodeSkipped", "RunSucceeded"]


def test_an_approval_deadline_fails_it_with_timeout() -> None:
    run = Run({"ap": {"kind": "approval", "timeout": 30}})
    run.start()
    decision = run.fire(timer_id("deadline", "ap", 1))
    assert run.now == T0 + 30
    assert types(decision) == ["NodeFailed", "RunFailed"]
    error = payload(decision, "NodeFailed")["error"]
    assert error["code"] == "timeout" and error["retryable"] is False
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id=TENANT, node="ap", data={"approve": True}))


def test_an_approval_without_timeout_has_no_deadline() -> None:
    run = Run({"ap": {"kind": "approval"}})
    decision = run.start()
    assert payload(decision, "RunWaiting")["until"] is None and decision.timers == []


@pytest.mark.parametrize(("data", "outcome"), [({"approve": True}, "succeeded"), ({"approve": False}, "failed")])
def test_a_signal_before_the_approval_is_reached_is_applied_when_it_is(data: Any, outcome: str) -> None:
    run = Run({"a": http(), "ap": {"kind": "approval", "timeout": 60, "depends_on": ["a"]}})
    run.start()
    decision = run.signal("ap", data, at=T0 + 1)
    assert types(decision) == ["SignalReceived"]
    assert run.state.nodes["ap"].status == "pending" and run.state.signals == {"ap": data}
    decision = run.ok("a", at=T0 + 2)
    assert types(decision)[:3] == [
        "NodeSucceeded",
        "RunWaiting",
        "NodeSucceeded" if outcome == "succeeded" else "NodeFailed",
    ]
    assert run.state.nodes["ap"].status == outcome
    assert run.state.status == outcome
    assert run.state.timers == {}


def test_the_first_signal_wins() -> None:
    run = Run({"a": http(), "ap": {"kind": "approval", "depends_on": ["a"]}})
    run.start()
    run.signal("ap", {"approve": False}, command_id="s1")
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id=TENANT, node="ap", data={"approve": True}, command_id="s2"))
    run.ok("a")
    assert run.state.nodes["ap"].status == "failed"


def test_signals_to_nodes_that_are_not_waiting_approvals_are_ignored() -> None:
    run = Run({"a": http(), "s": {"kind": "sleep", "duration": 5}, "ap": {"kind": "approval"}})
    run.start()
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id=TENANT, node="a", data={"approve": True}))
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id=TENANT, node="s", data={"approve": True}))
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id=TENANT, node="ghost", data={"approve": True}))
    run.signal("ap", {"approve": True})
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id=TENANT, node="ap", data={"approve": False}, command_id="s2"))


# --- when, trigger, on_error -----------------------------------------------------------------------------


def test_when_false_skips_the_node_and_its_dependants() -> None:
    run = Run(
        {
            "a": transform(1, when=False),
            "b": http(depends_on=["a"]),
            "c": transform(2, "b"),
            "d": transform(3),
        },
        outputs={"a": "{{ nodes.a.output }}", "statuses": "{{ nodes.b.status }},{{ nodes.c.status }}"},
    )
    decision = run.start()
    assert types(decision) == [
        "RunStarted",
        "NodeSkipped",
        "NodeSkipped",
        "NodeSkipped",
        "NodeSucceeded",
        "RunSucceeded",
    ]
    skipped = payloads(decision.events, "NodeSkipped")
    assert skipped == [
        {"node_id": "a", "reason": "when is false"},
        {"node_id": "b", "reason": "dependency a did not succeed"},
        {"node_id": "c", "reason": "dependency b did not succeed"},
    ]
    assert decision.tasks == []
    assert run.state.outputs == {"a": None, "statuses": "skipped,skipped"}
    assert run.state.nodes["a"].reason == "when is false"


def test_when_reads_the_outputs_of_dependencies() -> None:
    run = Run(
        {
            "a": http(),
            "big": transform("big", "a", when="nodes.a.output.n > 10"),
            "small": transform("small", "a", when="{{ nodes.a.output.n <= 10 }}"),
        }
    )
    run.start()
    run.ok("a", {"n": 11})
    assert run.state.nodes["big"].status == "succeeded" and run.state.nodes["small"].status == "skipped"


def test_when_true_runs_the_node() -> None:
    run = Run({"a": transform(1, when=True)})
    run.start()
    assert run.state.nodes["a"].status == "succeeded"


def test_trigger_all_done_runs_after_skipped_and_failed_dependencies() -> None:
    run = Run(
        {
            "skipped": transform(1, when="false"),
            "flaky": http(on_error="continue", retry={"max_attempts": 1}),
            "strict": transform("{{ nodes.skipped.status }}", "skipped", "flaky"),
            "cleanup": transform(
                "{{ nodes.skipped.status }}/{{ nodes.flaky.status }}/{{ nodes.flaky.output }}",
                "skipped",
                "flaky",
                trigger="all_done",
            ),
        }
    )
    run.start()
    decision = run.fail("flaky", "bad")
    assert types(decision) == ["NodeFailed", "NodeSkipped", "NodeSucceeded", "RunSucceeded"]
    assert run.state.nodes["strict"].reason == "dependency skipped did not succeed"
    assert run.state.nodes["cleanup"].output == "skipped/failed/None"
    assert run.state.status == "succeeded" and run.state.error is None


def test_trigger_all_done_waits_for_every_dependency_to_end() -> None:
    run = Run({"a": http(), "b": http(), "c": transform(1, "a", "b", trigger="all_done")})
    run.start()
    run.ok("a")
    assert run.status("c") == "pending"
    run.ok("b")
    assert run.status("c") == "succeeded"


def test_on_error_continue_records_the_failure_and_the_run_goes_on() -> None:
    run = Run(
        {
            "a": http(on_error="continue", retry={"max_attempts": 1}),
            "b": transform(1, "a"),
            "c": http(),
        },
        outputs={"a": "{{ nodes.a.status }}"},
    )
    run.start()
    decision = run.fail("a", "teapot")
    assert types(decision) == ["NodeFailed", "NodeSkipped"]
    assert run.state.status == "running" and run.state.error is None
    assert run.state.nodes["a"].error is not None and run.state.nodes["a"].error.code == "teapot"
    assert types(run.ok("c")) == ["NodeSucceeded", "RunSucceeded"]
    assert run.state.outputs == {"a": "failed"}


def test_a_template_error_fails_a_transform_without_retry() -> None:
    run = Run({"a": transform("{{ 1 / 0 }}")})
    decision = run.start()
    assert types(decision) == ["RunStarted", "NodeFailed", "RunFailed"]
    failed = payload(decision, "NodeFailed")
    assert failed["attempt"] == 1
    assert failed["error"]["code"] == "template_error" and failed["error"]["retryable"] is False
    assert "ZeroDivisionError" in failed["error"]["message"]
    assert payload(decision, "RunFailed")["node_id"] == "a"


def test_a_template_error_in_http_params_fails_the_node_without_sending_or_retrying() -> None:
    run = Run({"a": http("https://svc.test/{{ 1 // 0 }}", retry={"max_attempts": 5}, timeout=5)})
    decision = run.start()
    assert types(decision) == ["RunStarted", "NodeFailed", "RunFailed"]
    assert decision.tasks == [] and decision.timers == []
    error = payload(decision, "NodeFailed")["error"]
    assert error["code"] == "template_error" and error["retryable"] is False
    assert error["detail"]["path"] == "url"


def test_a_template_error_in_when_fails_the_node() -> None:
    run = Run({"a": transform(1, when="1 / 0 > 1", on_error="continue"), "b": transform(2, "a")})
    decision = run.start()
    assert types(decision) == ["RunStarted", "NodeFailed", "NodeSkipped", "RunSucceeded"]
    assert payload(decision, "NodeFailed")["error"]["detail"]["path"] == "when"


def test_a_template_error_in_outputs_fails_the_run() -> None:
    run = Run({"a": transform({"x": 1})}, outputs={"y": "{{ nodes.a.output.y }}"})
    decision = run.start()
    assert types(decision) == ["RunStarted", "NodeSucceeded", "RunFailed"]
    failed = payload(decision, "RunFailed")
    assert failed["node_id"] is None and failed["error"]["code"] == "template_error"
    assert run.state.status == "failed" and run.state.outputs is None


# --- cancel ----------------------------------------------------------------------------------------------


def test_cancel_ends_the_run_and_later_messages_are_ignored() -> None:
    run = Run(
        {
            "a": http(timeout=5),
            "s": {"kind": "sleep", "duration": 5},
            "ap": {"kind": "approval", "timeout": 9},
        }
    )
    run.start()
    assert set(run.state.timers) == {"timeout:a:1", "sleep:s:1", "deadline:ap:1"}
    decision = run.cancel("changed my mind", at=T0 + 1)
    assert types(decision) == ["RunCancelled"]
    assert payload(decision, "RunCancelled") == {"reason": "changed my mind"}
    assert decision.events[0].causation_id == "cancel-1"
    assert run.state.status == "cancelled" and run.state.timers == {} and run.state.ended_at == timestamp(T0 + 1)
    assert {n: s.status for n, s in run.state.nodes.items()} == {"a": "cancelled", "s": "cancelled", "ap": "cancelled"}
    assert run.state.error is not None and (run.state.error.code, run.state.error.message) == (
        "cancelled",
        "changed my mind",
    )
    assert_ignored(run, TaskResult(task_id=f"{RUN}:a:1", run_id=RUN, tenant_id=TENANT, node_id="a", attempt=1, ok=True))
    assert_ignored(run, TimerFired(run_id=RUN, tenant_id=TENANT, timer_id="sleep:s:1", fired_at=T0 + 5), at=T0 + 5)
    assert_ignored(run, SignalRun(run_id=RUN, tenant_id=TENANT, node="ap", data={"approve": True}))
    assert_ignored(run, CancelRun(run_id=RUN, tenant_id=TENANT, command_id="cancel-2"))
    assert_ignored(run, StartRun(run_id=RUN, tenant_id=TENANT, workflow="wf"))
    assert [e.type for e in run.events] == [
        "RunStarted",
        "NodeScheduled",
        "RunWaiting",
        "RunWaiting",
        "RunCancelled",
    ]


def test_a_finished_run_ignores_a_cancel() -> None:
    run = Run({"a": transform(1)})
    run.start()
    assert_ignored(run, CancelRun(run_id=RUN, tenant_id=TENANT))
    assert run.state.status == "succeeded"


# --- envelopes, determinism, evolve ------------------------------------------------------------------------


def _full_run() -> Run:
    """A run that touches every kind, a retry, a timeout, an early signal and a skip."""
    run = Run(
        {
            "prep": transform({"items": "{{ inputs.items }}"}),
            "each": {
                "kind": "map",
                "over": "{{ nodes.prep.output['items'] }}",
                "node": {"kind": "transform", "output": "{{ item * 10 + index }}"},
                "depends_on": ["prep"],
            },
            "call": http(
                "https://svc.test/{{ nodes.each.output | length }}",
                body={"xs": "{{ nodes.each.output }}"},
                timeout=5,
                retry={"max_attempts": 3, "initial_delay": 1},
                depends_on=["each"],
            ),
            "nap": {"kind": "sleep", "duration": 2, "depends_on": ["prep"]},
            "never": transform(0, "prep", when="nodes.prep.output['items'] | length > 10"),
            "ok": {
                "kind": "approval",
                "timeout": 600,
                "depends_on": ["call", "nap", "never"],
                "trigger": "all_done",
            },
        },
        inputs={"items": {"type": "array", "required": True}},
        outputs={"sum": "{{ nodes.each.output | sum }}", "reply": "{{ nodes.call.output }}"},
    )
    run.start({"items": [1, 2, 3]}, correlation_id="corr-1")
    run.signal("ok", {"approve": True}, at=T0 + 0.5)
    run.fail("call", "unavailable", retryable=True, at=T0 + 1)
    run.fire("retry:call:1")
    run.fire("timeout:call:2")
    run.fire("sleep:nap:1")
    run.fire("retry:call:2")
    run.ok("call", attempt=2)  # stale: attempt 3 is out
    run.ok("call", {"status": 200}, at=run.now + 0.1)
    return run


def test_the_full_run_ends_as_expected() -> None:
    run = _full_run()
    assert run.state.status == "succeeded"
    assert run.state.outputs == {"sum": 10 + 21 + 32, "reply": {"status": 200}}
    assert run.state.nodes["call"].attempts == 3
    assert run.state.nodes["never"].status == "skipped"
    assert run.state.nodes["ok"].output == {"approve": True}


def test_seqs_are_contiguous_from_one_across_decisions() -> None:
    run = _full_run()
    assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))
    assert run.state.seq == len(run.events)


def test_envelopes_carry_deterministic_ids_time_causation_and_correlation() -> None:
    run = Run({"a": http(timeout=5), "ap": {"kind": "approval", "depends_on": ["a"]}})
    start = run.start(correlation_id="corr-7")
    retry = run.fail("a", retryable=True, at=T0 + 1)
    timer = run.fire("retry:a:1")
    signal = run.signal("ap", {"approve": True}, command_id="sig-9", at=T0 + 3)
    done = run.ok("a", at=T0 + 4)
    for event in run.events:
        assert event.event_id == event_id_for(RUN, event.seq)
        assert event.run_id == RUN and event.tenant_id == TENANT
        assert event.correlation_id == "corr-7"
        assert event.schema_version == 1
        EVENT_TYPES[event.type].model_validate(event.payload)
    assert {e.causation_id for e in start.events} == {"start-1"}
    assert {e.causation_id for e in retry.events} == {f"{RUN}:a:1"}
    assert {e.causation_id for e in timer.events} == {"retry:a:1"}
    assert {e.causation_id for e in signal.events} == {"sig-9"}
    assert {e.causation_id for e in done.events} == {f"{RUN}:a:2"}
    assert [e.time for e in start.events] == [timestamp(T0)] * len(start.events)
    assert done.events[0].time == timestamp(T0 + 4)


def test_the_correlation_id_defaults_to_the_run_id() -> None:
    run = Run({"a": transform(1)})
    decision = run.start()
    assert {e.correlation_id for e in decision.events} == {RUN}


def test_the_same_messages_give_byte_identical_events() -> None:
    first, second = _full_run(), _full_run()
    assert [e.model_dump_json() for e in first.events] == [e.model_dump_json() for e in second.events]
    # And replaying the recorded messages through decide from scratch reproduces them too.
    state = RunState(run_id=RUN)
    replayed: list[Envelope] = []
    for inbound in first.inbounds:
        decision = decide(state, inbound)
        state = decision.state
        replayed.extend(decision.events)
    assert [e.model_dump_json() for e in replayed] == [e.model_dump_json() for e in first.events]
    assert state.model_dump() == first.state.model_dump()


def test_fold_of_the_events_equals_the_decided_state() -> None:
    run = _full_run()
    assert fold(RUN, run.events).model_dump() == run.state.model_dump()
    # Also after a trip through JSON, as a consumer of awe.events sees them.
    wire = [Envelope.model_validate_json(e.model_dump_json()) for e in run.events]
    assert fold(RUN, wire).model_dump(mode="json") == run.state.model_dump(mode="json")


def test_fold_equals_the_state_after_every_decision() -> None:
    run = Run(
        {
            "a": http(timeout=5),
            "s": {"kind": "sleep", "duration": 3},
            "ap": {"kind": "approval", "timeout": 9},
        }
    )
    steps: list[Decision] = [
        run.start(),
        run.fire("timeout:a:1"),
        run.signal("ap", {"approve": True}),
        run.fire("sleep:s:1"),
    ]
    steps += [run.fire("retry:a:1"), run.ok("a")]
    seen: list[Envelope] = []
    for decision in steps:
        seen.extend(decision.events)
        assert fold(RUN, seen).model_dump() == decision.state.model_dump()
    assert run.state.status == "succeeded"


def test_evolve_drops_an_event_already_folded() -> None:
    run = _full_run()
    state = fold(RUN, run.events[:5])
    assert evolve(state, run.events[4]) is state
    assert evolve(state, run.events[0]) is state
    assert fold(RUN, run.events[:5] + run.events[:5] + run.events[5:]).model_dump() == run.state.model_dump()


def test_evolve_raises_on_a_gap() -> None:
    run = _full_run()
    state = fold(RUN, run.events[:3])
    with pytest.raises(SequenceGapError) as caught:
        evolve(state, run.events[4])
    assert caught.value.code == "seq_gap"
    assert caught.value.detail == {"run_id": RUN, "expected": 4, "got": 5}
    with pytest.raises(SequenceGapError):
        evolve(RunState(run_id=RUN), run.events[1])


def test_run_view_shape() -> None:
    run = Run(
        {
            "a": http(on_error="continue", retry={"max_attempts": 1}),
            "b": transform({"k": [1, 2]}),
            "c": transform(1, "a"),
        },
        outputs={"k": "{{ nodes.b.output.k }}"},
    )
    run.start()
    run.fail("a", "teapot")
    assert run_view(run.state) == {
        "run_id": RUN,
        "status": "succeeded",
        "outputs": {"k": [1, 2]},
        "nodes": {
            "a": {
                "status": "failed",
                "output": None,
                "attempts": 1,
                "error": {
                    "code": "teapot",
                    "message": "teapot!",
                    "retryable": False,
                    "retry_after": None,
                    "detail": None,
                },
            },
            "b": {"status": "succeeded", "output": {"k": [1, 2]}, "attempts": 1, "error": None},
            "c": {"status": "skipped", "output": None, "attempts": 0, "error": None},
        },
        "error": None,
        "usage": {
            "calls": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cached_tokens": 0,
            "cost_usd": 0.0,
            "unpriced_calls": 0,
        },
    }
    json.dumps(run_view(run.state))  # plain JSON


def test_run_view_of_a_run_not_started_yet_says_running() -> None:
    assert run_view(RunState(run_id=RUN)) == {
        "run_id": RUN,
        "status": "running",
        "outputs": None,
        "nodes": {},
        "error": None,
        "usage": {
            "calls": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cached_tokens": 0,
            "cost_usd": 0.0,
            "unpriced_calls": 0,
        },
    }


def test_run_view_of_a_failed_run_carries_the_error() -> None:
    run = Run({"a": http()})
    run.start()
    run.fail("a", "bad")
    view = run_view(run.state)
    assert view["status"] == "failed" and view["outputs"] is None
    assert view["error"]["code"] == "bad" and view["nodes"]["a"]["error"]["code"] == "bad"


# --- reject ------------------------------------------------------------------------------------------------


def test_reject_records_a_rejection_for_a_new_run() -> None:
    decision = reject(
        RunState(run_id=RUN),
        tenant_id=TENANT,
        code="invalid_command",
        message="bad",
        now=T0,
        causation="t/0/7",
    )
    assert types(decision) == ["RunRejected"]
    event = decision.events[0]
    assert (event.seq, event.tenant_id, event.causation_id, event.correlation_id) == (1, TENANT, "t/0/7", RUN)
    assert event.payload == {"code": "invalid_command", "message": "bad", "problems": []}
    assert decision.state.status == "rejected" and decision.state.tenant_id == TENANT


def test_reject_leaves_an_existing_run_alone() -> None:
    run = Run({"a": http()})
    run.start()
    decision = reject(run.state, tenant_id=TENANT, code="invalid_command", message="bad", now=T0, causation="x")
    assert decision.events == [] and decision.state is run.state


# --- golden event logs ---------------------------------------------------------------------------------


def _golden_record(run: Run) -> dict[str, Any]:
    return {
        "definition": run.definition.model_dump(mode="json"),
        "messages": [
            {
                "now": i.now,
                "version": i.version,
                "with_definition": i.definition is not None,
                "message": i.message.model_dump(mode="json"),
            }
            for i in run.inbounds
        ],
        "events": [e.model_dump(mode="json") for e in run.events],
    }


def _parse_message(raw: dict[str, Any]) -> Message:
    kinds: dict[str, type[Message]] = {
        "StartRun": StartRun,
        "CancelRun": CancelRun,
        "SignalRun": SignalRun,
        "TaskResult": TaskResult,
        "TimerFired": TimerFired,
    }
    return kinds[raw["type"]].model_validate(raw)


def test_the_golden_log_replays_byte_for_byte() -> None:
    """A committed history: a change to ``decide`` that alters past runs' events shows up here.

    Regenerate deliberately with ``AWE_UPDATE_GOLDEN=1`` after a change that is meant to alter events.
    """
    path = GOLDEN / "full_run.json"
    if os.environ.get("AWE_UPDATE_GOLDEN"):
        path.write_text(json.dumps(_golden_record(_full_run()), indent=1, sort_keys=True) + "\n")
    golden = json.loads(path.read_text())
    definition = validate_definition(golden["definition"])
    state = RunState(run_id=RUN)
    events: list[Envelope] = []
    for raw in golden["messages"]:
        inbound = Inbound(
            message=_parse_message(raw["message"]),
            now=raw["now"],
            definition=definition if raw["with_definition"] else None,
            version=raw["version"],
        )
        decision = decide(state, inbound)
        state = decision.state
        events.extend(decision.events)
    assert [e.model_dump(mode="json") for e in events] == golden["events"]
    recorded = [Envelope.model_validate(e) for e in golden["events"]]
    assert fold(RUN, recorded).model_dump(mode="json") == state.model_dump(mode="json")


# --- regressions: bugs these tests found, fixed in the core while they were written ------------------------


@pytest.mark.parametrize("how", ["unknown_workflow", "invalid_inputs", "reject"])
def test_fold_equals_the_state_of_a_rejected_run(how: str) -> None:
    """RunRejected must carry everything decide set on the state (the correlation id), or the table and the
    fold of the log disagree."""
    run = Run({"a": transform(1)}, inputs={"n": {"type": "integer", "required": True}})
    if how == "unknown_workflow":
        decision = run.send(StartRun(run_id=RUN, tenant_id=TENANT, workflow="nope", correlation_id="c"))
    elif how == "invalid_inputs":
        decision = run.start({})
    else:
        decision = reject(RunState(run_id=RUN), tenant_id=TENANT, code="x", message="x", now=T0, causation="c")
    assert fold(RUN, decision.events).model_dump() == decision.state.model_dump()


def test_fold_equals_the_state_when_a_template_yields_tuples() -> None:
    """A template may yield tuples (``dictsort``, ``items()``); the state holds what the log holds: lists."""
    run = Run(
        {"a": transform("{{ {'b': 2, 'a': 1} | dictsort }}")},
        outputs={"pairs": "{{ nodes.a.output }}"},
    )
    decision = run.start()
    assert fold(RUN, decision.events).model_dump() == decision.state.model_dump()


def test_a_downstream_template_sees_the_same_data_live_and_after_a_restart() -> None:
    """Live and after a restart from the log, a template must see the same data and decide the same."""
    nodes = {
        "a": transform("{{ {'k': 1} | dictsort }}"),
        "gate": http(),
        "b": transform("{{ nodes.a.output[0] == ['k', 1] }}", "a", "gate"),
    }
    live = Run(nodes)
    live.start()
    restarted = Run(nodes)
    restarted.start()
    # A worker that restarts rebuilds the run from its log (fold), then the result arrives.
    restarted.state = fold(RUN, restarted.events)
    live.ok("gate")
    restarted.ok("gate")
    assert live.state.nodes["b"].output == restarted.state.nodes["b"].output


def test_a_decision_that_ends_the_run_dispatches_no_task() -> None:
    """No side effect for a run that ended in the same decision that scheduled it."""
    run = Run({"call": http(timeout=5), "bad": transform("{{ 1 / 0 }}")})
    decision = run.start()
    assert types(decision) == ["RunStarted", "NodeScheduled", "NodeFailed", "RunFailed"]
    assert decision.tasks == [] and decision.timers == []


def test_the_definition_recorded_in_run_started_validates_again() -> None:
    """The definition as recorded (every default spelled out, inner map node too) is a valid definition."""
    run = _full_run()
    recorded = run.events[0].payload["definition"]
    assert validate_definition(recorded) == run.definition


def test_a_timer_fired_before_its_time_changes_nothing_and_is_armed_again() -> None:
    run = Run({"s": {"kind": "sleep", "duration": "1m"}})
    run.start()
    sleep = timer_id("sleep", "s", 1)
    early = run.fire(sleep, at=T0 + 30)
    assert early.events == []
    assert [t.timer_id for t in early.timers] == [sleep], "the edge re-arms it"
    assert run.status("s") == "waiting"
    assert types(run.fire(sleep)) == ["NodeSucceeded", "RunSucceeded"]


def test_retry_after_is_honoured_up_to_an_hour() -> None:
    run = Run({"a": http(retry={"max_attempts": 3})})
    run.start()
    decision = run.fail("a", retryable=True, retry_after=10 * 24 * 3600.0)
    assert payload(decision, "NodeRetrying")["retry_at"] == run.now + MAX_RETRY_AFTER_S


def test_an_approval_answered_early_leaves_no_deadline_to_index() -> None:
    run = Run({"gate": http(), "ok": {"kind": "approval", "timeout": "1h", "depends_on": ["gate"]}})
    run.start()
    run.signal("ok", {"approve": True})
    decision = run.ok("gate")
    assert run.status() == "succeeded"
    assert decision.timers == []
