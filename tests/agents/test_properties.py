"""Properties of ``decide`` over random workflows driven by a simulated, adversarial environment.

Hypothesis draws an acyclic workflow (3 to 10 nodes, edges only from earlier to later nodes) and then plays
the edges: executors answer tasks ok, with a retryable error or a permanent one; the timer wheel fires armed
timers at or after their due time; a human answers approvals, sometimes before the approval is reached. The
order of deliveries is drawn, some are duplicated, some are stale (an old attempt), some come from another
tenant, and now and then the run is cancelled. Whatever happens, the run must end, its state must be the fold
of its events, seqs must be 1..n, nothing may follow the end, and replaying the messages must reproduce the
events byte for byte. Pure: no broker, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings, target
from hypothesis import event as tally
from hypothesis import strategies as st

from agents.decide import decide
from agents.messages import Decision, Inbound, Message
from schemas.commands import CancelRun, SignalRun, StartRun
from schemas.definition import DEFAULT_RETRY, HttpNode, WorkflowDefinition
from schemas.envelope import Envelope, event_id_for, timestamp
from schemas.errors import ErrorInfo
from schemas.state import ENDED_NODE, RunState, Timer, evolve, fold, run_view
from schemas.tasks import Task, TaskResult, TimerFired
from schemas.validation import validate_definition

RUN = "run-p"
TENANT = "acme"
T0 = 1_700_000_000.0
KINDS = ("transform", "http", "sleep", "approval", "map")
TERMINAL_EVENTS = frozenset({"RunSucceeded", "RunFailed", "RunCancelled", "RunRejected"})
#: Far more than a run of 10 nodes with 3 attempts each, their timers, and the injected extras need.
MAX_STEPS = 400
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- workflows ----------------------------------------------------------------------------------------------


@st.composite
def workflows(draw: st.DrawFn) -> WorkflowDefinition:
    """A valid random DAG: every kind, literal ``when``, both triggers, both ``on_error``, small retries."""
    count = draw(st.integers(3, 10))
    nodes: dict[str, dict[str, Any]] = {}
    for i in range(count):
        node_id = f"n{i}"
        earlier = [f"n{j}" for j in range(i)]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        kind = draw(st.sampled_from(KINDS))
        reads = {dep: "{{ nodes." + dep + ".status }}" for dep in deps}
        node: dict[str, Any] = {"kind": kind, "depends_on": deps}
        when = draw(st.sampled_from([None, None, None, "true", "false"]))
        if when is not None:
            node["when"] = when
        node["trigger"] = draw(st.sampled_from(["all_success", "all_done"]))
        node["on_error"] = draw(st.sampled_from(["fail", "continue"]))
        if kind == "transform":
            node["output"] = {
                "i": i,
                "deps": reads,
                "first": "{{ nodes." + deps[0] + ".output }}" if deps else None,
            }
        elif kind == "map":
            node["over"] = draw(st.sampled_from(["{{ inputs.items }}", "{{ [3, 1, 2] }}", "{{ [] }}"]))
            node["node"] = {"kind": "transform", "output": {"v": "{{ item }}", "at": "{{ index }}", "n": i}}
        elif kind == "http":
            node["url"] = "https://svc.test/" + node_id + "/{{ run.id }}"
            node["body"] = {"deps": reads}
            node["retry"] = {
                "max_attempts": draw(st.integers(1, 3)),
                "initial_delay": draw(st.sampled_from([0, 0.5, 1, 2])),
                "max_delay": 3,
            }
            timeout = draw(st.sampled_from([None, None, 2, 10]))
            if timeout is not None:
                node["timeout"] = timeout
        elif kind == "sleep":
            node["duration"] = draw(st.sampled_from([0, 1, 5]))
        else:
            timeout = draw(st.sampled_from([None, 5, 60]))
            if timeout is not None:
                node["timeout"] = timeout
        nodes[node_id] = node
    return validate_definition(
        {
            "name": "prop",
            "inputs": {"items": {"type": "array", "default": ["a", "b"]}},
            "nodes": nodes,
            "outputs": {"statuses": {node_id: "{{ nodes." + node_id + ".status }}" for node_id in nodes}},
        }
    )


# --- the simulated environment ----------------------------------------------------------------------------

Deliverable = Task | Timer | SignalRun


@dataclass
class Sim:
    """The edges around ``decide``: the executors, the timer wheel, the humans, and a log of it all."""

    definition: WorkflowDefinition
    state: RunState = field(default_factory=lambda: RunState(run_id=RUN))
    folded: RunState = field(default_factory=lambda: RunState(run_id=RUN))
    now: float = T0
    pool: list[Deliverable] = field(default_factory=list)
    delivered: list[Message] = field(default_factory=list)
    issued: list[Task] = field(default_factory=list)
    inbounds: list[Inbound] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)
    cancelled_by: list[str] = field(default_factory=list)

    def send(self, message: Message, *, definition: WorkflowDefinition | None = None) -> Decision:
        before = self.state
        inbound = Inbound(message=message, now=self.now, definition=definition, version=1 if definition else None)
        decision = decide(before, inbound)
        self.inbounds.append(inbound)
        self.decisions.append(decision)
        self.check_step(before, inbound, decision)
        self.state = decision.state
        self.events.extend(decision.events)
        self.pool.extend(decision.tasks)
        self.issued.extend(decision.tasks)
        self.pool.extend(decision.timers)
        return decision

    def check_step(self, before: RunState, inbound: Inbound, decision: Decision) -> None:
        message = inbound.message
        if before.terminal or (before.status != "pending" and message.tenant_id != before.tenant_id):
            # (d) nothing after the end; and another tenant learns nothing and changes nothing.
            assert decision.events == [] and decision.tasks == [] and decision.timers == []
            assert decision.state == before
        # (c) seqs continue the run's seq without gaps; ids and times come from the run id, seq and message.
        assert [e.seq for e in decision.events] == list(range(before.seq + 1, before.seq + 1 + len(decision.events)))
        for event in decision.events:
            assert event.event_id == event_id_for(RUN, event.seq)
            assert event.run_id == RUN and event.tenant_id == TENANT
            assert event.time == timestamp(inbound.now)
        # (d) a terminal run event is the last event of its decision.
        ends = [i for i, e in enumerate(decision.events) if e.type in TERMINAL_EVENTS]
        assert ends in ([], [len(decision.events) - 1])
        # (b) the decided state is the fold of the events, after every step.
        for event in decision.events:
            self.folded = evolve(self.folded, event)
        assert self.folded.model_dump() == decision.state.model_dump()
        # Every task was recorded as scheduled first; every armed timer is due now or later.
        scheduled = {(e.payload["task_id"], e.payload["attempt"]) for e in decision.events if e.type == "NodeScheduled"}
        assert {(t.task_id, t.attempt) for t in decision.tasks} <= scheduled
        assert all(t.fire_at >= inbound.now for t in decision.timers)
        assert all(t.run_id == RUN and t.tenant_id == TENANT for t in decision.tasks)
        if decision.state.terminal:
            assert decision.tasks == [] and decision.timers == [], "no side effect for a run that ended"
        if not before.terminal and before.status != "pending" and message.tenant_id == before.tenant_id:
            check_reaction(before, inbound, decision)


def check_reaction(before: RunState, inbound: Inbound, decision: Decision) -> None:
    """The first events a message leads to, from the state it met: the rules for results, timers, signals."""
    message, now = inbound.message, inbound.now
    first = [(e.type, e.payload) for e in decision.events[:2]]
    definition = before.definition
    assert definition is not None
    if isinstance(message, TaskResult):
        node = before.nodes.get(message.node_id)
        if node is None or node.status != "scheduled" or node.attempts != message.attempt:
            assert first == [], "a duplicate or stale result must change nothing"
            return
        assert first, "the result of the current attempt must be recorded"
        kind, body = first[0]
        assert (body["node_id"], body["attempt"]) == (message.node_id, message.attempt)
        spec = definition.nodes[message.node_id]
        policy = spec.retry or DEFAULT_RETRY
        if message.ok:
            assert kind == "NodeSucceeded" and body["output"] == message.output
        elif message.error is not None and message.error.retryable and message.attempt < policy.max_attempts:
            assert kind == "NodeRetrying"
            wait = max(policy.delay(message.attempt), message.error.retry_after or 0)
            assert body["retry_at"] == now + wait
        else:
            assert kind == "NodeFailed"
    elif isinstance(message, TimerFired):
        timer = before.timers.get(message.timer_id)
        if timer is None:
            assert first == [], "a timer no longer armed must change nothing"
            return
        assert now >= timer.fire_at
        assert first, "an armed timer must act when it fires"
        kind, body = first[0]
        assert body["node_id"] == timer.node_id
        if timer.kind == "timeout":
            policy = definition.nodes[timer.node_id].retry or DEFAULT_RETRY
            retry = timer.attempt < policy.max_attempts
            assert (kind, body["attempt"]) == ("NodeRetrying" if retry else "NodeFailed", timer.attempt)
            assert body["error"]["code"] == "timeout" and body["error"]["retryable"] is True
            if retry:
                assert body["retry_at"] == now + policy.delay(timer.attempt)
        else:
            expected = {"retry": ("NodeScheduled", timer.attempt + 1), "sleep": ("NodeSucceeded", 1)}
            assert (kind, body["attempt"]) == expected.get(timer.kind, ("NodeFailed", 1))
            if timer.kind == "deadline":
                assert body["error"]["code"] == "timeout" and body["error"]["retryable"] is False
    elif isinstance(message, SignalRun):
        node = before.nodes.get(message.node)
        target_spec = definition.nodes.get(message.node)
        if target_spec is None or target_spec.kind != "approval" or node is None or node.status in ENDED_NODE:
            assert first == []
            return
        if message.node in before.signals:
            assert first == [], "the first answer wins"
            return
        assert first[:1] == [
            (
                "SignalReceived",
                {"node_id": message.node, "data": message.data, "command_id": message.command_id},
            )
        ]
        if node.status == "waiting":
            approved = isinstance(message.data, dict) and message.data.get("approve") is True
            assert first[1][0] == ("NodeSucceeded" if approved else "NodeFailed")
            if not approved:
                assert first[1][1]["error"]["code"] == "rejected"
        else:
            assert len(decision.events) == 1, "an early answer waits for its approval to be reached"
    elif isinstance(message, CancelRun):
        assert [e.type for e in decision.events] == ["RunCancelled"]


def outcome_result(task: Task, outcome: str, retry_after: int) -> TaskResult:
    common: dict[str, Any] = {
        "task_id": task.task_id,
        "run_id": task.run_id,
        "tenant_id": task.tenant_id,
        "node_id": task.node_id,
        "attempt": task.attempt,
    }
    if outcome == "ok":
        return TaskResult(**common, ok=True, output={"from": task.task_id, "url": task.params["url"]}, duration_ms=3)
    error = ErrorInfo(
        code="unavailable" if outcome != "permanent" else "bad_request",
        message=outcome,
        retryable=outcome != "permanent",
        retry_after=retry_after if outcome == "retry_after" else None,
    )
    return TaskResult(**common, ok=False, error=error)


def as_message(data: st.DataObject, item: Deliverable, sim: Sim) -> Message:
    """What the edge sends for an outstanding deliverable, moving the clock as it must."""
    if isinstance(item, Task):
        outcome = data.draw(
            st.sampled_from(["ok", "ok", "ok", "retryable", "retry_after", "permanent"]), label="outcome"
        )
        return outcome_result(item, outcome, data.draw(st.integers(0, 10), label="retry_after"))
    if isinstance(item, Timer):
        sim.now = max(sim.now, item.fire_at)  # the wheel fires a timer at or after its due time
        return TimerFired(run_id=RUN, tenant_id=TENANT, timer_id=item.timer_id, fired_at=sim.now)
    return item


def simulate(data: st.DataObject, definition: WorkflowDefinition) -> Sim:
    sim = Sim(definition)
    start = StartRun(run_id=RUN, tenant_id=TENANT, workflow="prop", command_id="start", correlation_id="corr")
    decision = sim.send(start, definition=definition)
    assert [e.type for e in decision.events][:1] == ["RunStarted"]
    # Every approval gets one answer from a human, at a random moment: possibly before it is reached.
    for node_id, spec in definition.nodes.items():
        if spec.kind == "approval":
            answer = data.draw(
                st.sampled_from([{"approve": True}, {"approve": True}, {"approve": False}, None]),
                label=node_id,
            )
            sim.pool.append(
                SignalRun(run_id=RUN, tenant_id=TENANT, node=node_id, data=answer, command_id=f"s-{node_id}")
            )
    # The trouble this run meets, as the steps at which it strikes (drawn up front, so it shrinks well).
    trouble: dict[int, str] = {}
    cancel_at = data.draw(st.none() | st.integers(1, 12), label="cancel_at")
    if cancel_at is not None:
        trouble[cancel_at] = "cancel"
    stale_budget = 4
    for kind, most in (("duplicate", 8), ("foreign", 3)):
        for step in data.draw(st.sets(st.integers(1, 20), max_size=most), label=kind):
            trouble.setdefault(step, kind)
    for step in range(MAX_STEPS):
        if not sim.pool:
            break
        sim.now += data.draw(st.integers(0, 3), label="tick")
        message = injected(data, sim, trouble[step]) if step in trouble else None
        # The dangerous moment for a stale answer: the node is busy with a newer attempt of the same task.
        if message is None and stale_budget and superseded(sim) and data.draw(st.booleans(), label="stale"):
            stale_budget -= 1
            task = data.draw(st.sampled_from(superseded(sim)), label="stale_task")
            message = outcome_result(task, data.draw(st.sampled_from(["ok", "permanent"]), label="stale_outcome"), 0)
        if message is not None:
            sim.send(message)
            continue
        item = sim.pool.pop(data.draw(st.integers(0, len(sim.pool) - 1), label="pick"))
        message = as_message(data, item, sim)
        sim.delivered.append(message)
        sim.send(message)
    else:
        raise AssertionError(f"the environment still had {len(sim.pool)} deliveries after {MAX_STEPS} steps")
    return sim


def superseded(sim: Sim) -> list[Task]:
    """Tasks of an attempt that timed out or failed while a later attempt of the node is out."""
    nodes = sim.state.nodes
    return [t for t in sim.issued if nodes[t.node_id].status == "scheduled" and nodes[t.node_id].attempts > t.attempt]


def injected(data: st.DataObject, sim: Sim, kind: str) -> Message | None:
    if kind == "cancel":
        sim.cancelled_by.append("cancel")
        return CancelRun(run_id=RUN, tenant_id=TENANT, reason="chaos", command_id="cancel")
    if not sim.delivered:
        return None
    earlier = data.draw(st.sampled_from(sim.delivered), label=kind)
    if kind == "duplicate":
        return earlier  # at-least-once delivery: the same record again
    return earlier.model_copy(update={"tenant_id": "intruder"})


# --- properties -------------------------------------------------------------------------------------------


def check_outcome(sim: Sim) -> None:
    """What the end of the run must look like, given the definition and what the environment did."""
    state, definition, events = sim.state, sim.definition, sim.events
    # (a) the run ended (the environment ran out of deliveries, so it can never end later).
    assert state.terminal, f"stuck in {state.status}: {[(n, s.status) for n, s in state.nodes.items()]}"
    assert state.timers == {}
    # (c) seqs are 1..n, no gap, no repeat.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # (d) exactly one terminal event, and it is the last one.
    assert [e.type for e in events if e.type in TERMINAL_EVENTS] == [events[-1].type]
    # (b) the fold of the whole log, also after a trip through JSON, is the final state.
    assert fold(RUN, events).model_dump() == state.model_dump()
    wire = [Envelope.model_validate_json(e.model_dump_json()) for e in events]
    assert fold(RUN, wire).model_dump(mode="json") == state.model_dump(mode="json")
    assert set(run_view(state)["nodes"]) == set(definition.nodes)

    for node_id, spec in definition.nodes.items():
        node = state.nodes[node_id]
        if isinstance(spec, HttpNode):
            limit = spec.retry.max_attempts if spec.retry else 3
            assert node.attempts <= limit
        retried = [e.payload for e in events if e.type == "NodeRetrying" and e.payload["node_id"] == node_id]
        assert all(p["error"]["retryable"] for p in retried)
        assert all(isinstance(spec, HttpNode) and p["attempt"] < limit for p in retried)

    if state.status == "cancelled":
        assert sim.cancelled_by and events[-1].causation_id == "cancel"
    elif state.status == "failed":
        assert state.error is not None
        culprit = events[-1].payload["node_id"]
        assert culprit is not None and state.nodes[culprit].status == "failed"
        assert definition.nodes[culprit].on_error == "fail"
    else:
        assert state.status == "succeeded"
        # (e) every node ended, and each one ended the way the rules say it must.
        assert all(n.status in ENDED_NODE for n in state.nodes.values())
        for node_id in definition.topological_order():
            spec, node = definition.nodes[node_id], state.nodes[node_id]
            blocked = any(state.nodes[d].status != "succeeded" for d in spec.depends_on)
            if blocked and spec.trigger == "all_success":
                assert node.status == "skipped" and node.reason is not None and node.reason.startswith("dependency")
            elif spec.when == "false":
                assert node.status == "skipped" and node.reason == "when is false"
            elif spec.on_error == "fail":
                assert node.status == "succeeded"
            else:
                assert node.status in ("succeeded", "failed")
            if spec.kind == "map" and node.status == "succeeded":
                assert [item["at"] for item in node.output] == list(range(len(node.output)))
        assert state.outputs == {"statuses": {node_id: n.status for node_id, n in state.nodes.items()}}


def replay(inbounds: list[Inbound], restart_at: int | None = None) -> list[Decision]:
    """Run recorded messages through ``decide`` again; optionally restart from the JSON log at one step."""
    state = RunState(run_id=RUN)
    log: list[Envelope] = []
    decisions = []
    for step, inbound in enumerate(inbounds):
        if step == restart_at:
            # A worker restart: the state is rebuilt from the events as a consumer reads them.
            state = fold(RUN, [Envelope.model_validate_json(e.model_dump_json()) for e in log])
        decision = decide(state, inbound)
        state = decision.state
        log.extend(decision.events)
        decisions.append(decision)
    return decisions


def wire_form(decisions: list[Decision]) -> list[tuple[list[str], list[str], list[str]]]:
    return [
        (
            [e.model_dump_json() for e in d.events],
            [t.model_dump_json() for t in d.tasks],
            [t.model_dump_json() for t in d.timers],
        )
        for d in decisions
    ]


@SETTINGS
@given(definition=workflows(), data=st.data())
def test_every_run_ends_consistently_whatever_the_environment_does(
    definition: WorkflowDefinition, data: st.DataObject
) -> None:
    sim = simulate(data, definition)
    reached = sorted({s.kind for n, s in definition.nodes.items() if sim.state.nodes[n].attempts})
    tally(f"run {sim.state.status}")
    tally(f"steps {len(sim.inbounds) // 10 * 10}+")
    tally(f"kinds reached {reached}")
    target(float(len(sim.inbounds)), label="steps")  # steer towards long, eventful runs
    check_outcome(sim)
    # (f) the same messages give byte-identical events, tasks and timers, even across a restart from the log.
    original = wire_form(sim.decisions)
    assert wire_form(replay(sim.inbounds)) == original
    restart_at = data.draw(st.integers(1, len(sim.inbounds)), label="restart_at")
    assert wire_form(replay(sim.inbounds, restart_at)) == original


@SETTINGS
@given(definition=workflows(), data=st.data())
def test_a_well_behaved_environment_lets_a_run_without_failures_succeed(
    definition: WorkflowDefinition, data: st.DataObject
) -> None:
    """Executors always succeed, humans approve in time: only a ``when`` can keep a node from running."""
    sim = Sim(definition)
    sim.send(StartRun(run_id=RUN, tenant_id=TENANT, workflow="prop", command_id="start"), definition=definition)
    for node_id, spec in definition.nodes.items():
        if spec.kind == "approval":
            sim.pool.append(SignalRun(run_id=RUN, tenant_id=TENANT, node=node_id, data={"approve": True}))
    for _ in range(MAX_STEPS):
        if not sim.pool:
            break
        item = sim.pool.pop(data.draw(st.integers(0, len(sim.pool) - 1), label="pick"))
        if isinstance(item, Timer) and item.kind in ("timeout", "deadline"):
            continue  # everything answers in time: the timeouts never come due
        if isinstance(item, Task):
            message: Message = outcome_result(item, "ok", 0)
        elif isinstance(item, Timer):
            sim.now = max(sim.now, item.fire_at)
            message = TimerFired(run_id=RUN, tenant_id=TENANT, timer_id=item.timer_id, fired_at=sim.now)
        else:
            message = item
        sim.send(message)
    assert sim.state.status == "succeeded"
    for node_id, spec in definition.nodes.items():
        skipped_by_when = spec.when == "false"
        blocked = any(sim.state.nodes[d].status == "skipped" for d in spec.depends_on) and spec.trigger == "all_success"
        expected = "skipped" if skipped_by_when or blocked else "succeeded"
        assert sim.state.nodes[node_id].status == expected, node_id
        assert sim.state.nodes[node_id].attempts == (0 if expected == "skipped" else 1)
    assert fold(RUN, sim.events).model_dump() == sim.state.model_dump()
