"""``decide``: the run state machine, a pure function of a run's state and one message.

It never reads a clock, draws an id or does I/O: time comes in with the message, ids are derived from the
run id, and side effects leave as tasks and timers for the edges to carry out. Pure node kinds
(``transform``, ``map``) are evaluated here, so they cost no executor hop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.messages import Decision, Inbound
from schemas.commands import CancelRun, NoteFork, SignalRun, StartRun
from schemas.definition import DEFAULT_RETRY, AiNode, MapNode, NodeSpec, TransformNode
from schemas.envelope import Envelope, event_id_for, timestamp
from schemas.errors import ErrorInfo
from schemas.events import (
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
from schemas.exceptions import InputError, Problem, TemplateError
from schemas.refusals import refuse_signal
from schemas.state import ENDED_NODE, RunState, Timer, apply
from schemas.tasks import Task, TaskResult, TimerFired
from schemas.templates import evaluate_condition, render
from schemas.upcasting import current_version
from schemas.validation import validate_inputs

MAX_RETRY_AFTER_S = 3600.0
"""A server's ``Retry-After`` is honoured up to an hour, so a bogus value cannot park a run for ever."""


def decide(state: RunState, inbound: Inbound) -> Decision:
    """Apply one message to a run and return the events, tasks and timers it leads to."""
    step = _Step(state, inbound)
    message = inbound.message
    if isinstance(message, StartRun):
        step.start(message)
    elif isinstance(message, NoteFork):
        # An annotation, not a change: recorded on a finished run too (forks are usually of finished runs).
        if state.status not in ("pending", "rejected") and message.tenant_id == state.tenant_id:
            step.emit(
                RunForked(child_run_id=message.child_run_id, from_node=message.from_node, command_id=message.command_id)
            )
    elif state.status == "pending" or state.terminal or message.tenant_id != state.tenant_id:
        # Nothing to act on: a late result after the end, a command for a run that never started, or one
        # from another tenant, which must not learn that the run exists.
        pass
    elif isinstance(message, TaskResult):
        step.on_result(message)
    elif isinstance(message, TimerFired):
        step.on_timer(message)
    elif isinstance(message, SignalRun):
        step.on_signal(message)
    elif isinstance(message, CancelRun):
        step.emit(RunCancelled(reason=message.reason), causation=message.command_id)
    return step.decision()


def reject(
    state: RunState,
    *,
    tenant_id: str,
    code: str,
    message: str,
    now: float,
    causation: str,
    problems: Sequence[Problem] = (),
) -> Decision:
    """Reject a start that could not even be read, on the run's own log; nothing for a run that exists."""
    if state.status != "pending":
        return Decision(state=state)
    state = state.model_copy(update={"tenant_id": tenant_id, "correlation_id": state.run_id})
    step = _Step(state, Inbound(message=CancelRun(run_id=state.run_id, command_id=causation), now=now))
    step.emit(RunRejected(code=code, message=message, problems=list(problems)))
    return step.decision()


class _Step:
    """The events one message produces, folded into the state as they are emitted."""

    def __init__(self, state: RunState, inbound: Inbound) -> None:
        self.state = state
        self.inbound = inbound
        # The clock at the log's resolution (events carry microseconds), so that a replay, which only has
        # the log, computes the very same deadlines.
        self.now = round(inbound.now, 6)
        self.events: list[Envelope] = []
        self.tasks: list[Task] = []
        self.timers: list[Timer] = []
        self.causation = _causation_of(inbound)
        message = inbound.message
        # Events act for whoever sent the command behind them; results and timers act for the run's starter.
        self.principal = message.principal if not isinstance(message, TaskResult | TimerFired) else None

    def decision(self) -> Decision:
        if self.state.terminal:
            # Work emitted earlier in this step is moot once the run ended: no side effect may follow.
            return Decision(state=self.state, events=self.events)
        # A timer armed and disarmed within this one step (an approval answered early) need not be indexed.
        timers = [t for t in self.timers if t.timer_id in self.state.timers]
        return Decision(state=self.state, events=self.events, tasks=self.tasks, timers=timers)

    def emit(self, payload: Payload, causation: str | None = None) -> None:
        seq = self.state.seq + 1
        dumped = payload.model_dump(mode="json")
        envelope = Envelope(
            event_id=event_id_for(self.state.run_id, seq),
            run_id=self.state.run_id,
            tenant_id=self.state.tenant_id,
            seq=seq,
            type=type(payload).__name__,
            schema_version=current_version(type(payload).__name__),
            time=timestamp(self.now),
            causation_id=causation or self.causation,
            correlation_id=self.state.correlation_id,
            principal=self.principal or self.state.principal,
            payload=dumped,
        )
        # Fold the payload as it reads back from the log (tuples become lists, say), so that the state
        # decided live and the state folded after a restart are the same. A definition was itself read
        # from JSON, so its round trip is the identity; keeping the object keeps what it has computed
        # once (its topological order) for every run of it.
        if isinstance(payload, RunStarted):
            payload = RunStarted.model_validate({**dumped, "definition": payload.definition})
        else:
            payload = type(payload).model_validate(dumped)
        before = set(self.state.timers)
        self.state = apply(self.state, envelope, payload)
        self.events.append(envelope)
        self.timers.extend(t for k, t in self.state.timers.items() if k not in before)

    # -- messages -------------------------------------------------------------------------------------

    def start(self, command: StartRun) -> None:
        if self.state.status != "pending":
            return
        self.state = self.state.model_copy(
            update={"tenant_id": command.tenant_id, "correlation_id": command.correlation_id or command.run_id}
        )
        definition = command.definition or self.inbound.definition
        version = command.version if command.definition is not None else self.inbound.version
        if definition is None or version is None:
            wanted = command.workflow + (f" version {command.version}" if command.version else "")
            self.emit(RunRejected(code="unknown_workflow", message=f"no workflow named {wanted}"))
            return
        try:
            inputs = validate_inputs(definition, command.inputs)
        except InputError as err:
            self.emit(RunRejected(code=err.code, message=err.message, problems=err.problems))
            return
        fork = command.fork
        if fork is not None:
            unknown = sorted({fork.from_node, *fork.reused} - set(definition.nodes))
            if unknown:
                self.emit(
                    RunRejected(code="invalid_fork", message=f"the fork names unknown nodes: {', '.join(unknown)}")
                )
                return
        self.emit(
            RunStarted(
                workflow=definition.name,
                version=version,
                definition=definition,
                inputs=inputs,
                parent_run_id=fork.parent_run_id if fork else None,
                forked_from_node=fork.from_node if fork else None,
            )
        )
        if fork is not None:
            for node_id in definition.topological_order():
                if node_id in fork.reused:
                    self.emit(
                        NodeSucceeded(
                            node_id=node_id, attempt=0, output=fork.reused[node_id], reused_from=fork.parent_run_id
                        )
                    )
        self.advance()

    def on_result(self, result: TaskResult) -> None:
        node = self.state.nodes.get(result.node_id)
        if node is None or node.status != "scheduled" or node.attempts != result.attempt:
            return  # a duplicate, or an answer to an attempt that already timed out
        if result.call is not None:
            # The answer is on the log before the run moves on: a restart or a replay reuses it.
            call = result.call.model_dump()
            self.emit(
                AICallRecorded(node_id=result.node_id, attempt=result.attempt, workflow=self.state.workflow, **call)
            )
        if result.ok:
            self.emit(
                NodeSucceeded(
                    node_id=result.node_id, attempt=result.attempt, output=result.output, duration_ms=result.duration_ms
                )
            )
        else:
            error = result.error or ErrorInfo(code="unknown", message="the executor reported no error detail")
            self.attempt_failed(result.node_id, result.attempt, error)
        self.advance()

    def on_timer(self, fired: TimerFired) -> None:
        timer = self.state.timers.get(fired.timer_id)
        if timer is None:
            return  # already fired, or made moot by a result
        if fired.fired_at < timer.fire_at:
            self.timers.append(timer)  # fired early (a clock behind ours): arm it again, change nothing
            return
        spec = self.spec(timer.node_id)
        if timer.kind == "retry":
            self.schedule(timer.node_id, spec, timer.attempt + 1)
        elif timer.kind == "timeout":
            error = ErrorInfo(
                code="timeout", message=f"attempt {timer.attempt} did not finish within {spec.timeout}s", retryable=True
            )
            self.attempt_failed(timer.node_id, timer.attempt, error)
        elif timer.kind == "sleep":
            self.emit(NodeSucceeded(node_id=timer.node_id, attempt=1, output=None))
        else:
            error = ErrorInfo(code="timeout", message=f"no signal within the deadline of {spec.timeout}s")
            self.node_failed(timer.node_id, 1, error)
        self.advance()

    def on_signal(self, signal: SignalRun) -> None:
        if refuse_signal(self.state, signal.node) is not None:
            return  # the first answer wins; the CLI and the gateway told the sender of any other refusal
        self.emit(SignalReceived(node_id=signal.node, data=signal.data, command_id=signal.command_id))
        if self.state.nodes[signal.node].status == "waiting":
            self.resolve_approval(signal.node)
            self.advance()

    # -- nodes ----------------------------------------------------------------------------------------

    def spec(self, node_id: str) -> NodeSpec:
        assert self.state.definition is not None
        return self.state.definition.nodes[node_id]

    def attempt_failed(self, node_id: str, attempt: int, error: ErrorInfo) -> None:
        spec = self.spec(node_id)
        policy = spec.retry or DEFAULT_RETRY
        per_candidate = policy.max_attempts
        candidates = len(spec.candidates()) if isinstance(spec, AiNode) else 1
        if not error.retryable or attempt >= per_candidate * candidates:
            self.node_failed(node_id, attempt, error)
            return
        if attempt % per_candidate == 0:
            delay = 0.0  # this model's attempts are spent: the next fallback is another service, try it now
        else:
            local = (attempt - 1) % per_candidate + 1
            delay = max(policy.delay(local), min(error.retry_after or 0.0, MAX_RETRY_AFTER_S))
        self.emit(NodeRetrying(node_id=node_id, attempt=attempt, error=error, retry_at=self.now + delay))

    def node_failed(self, node_id: str, attempt: int, error: ErrorInfo) -> None:
        self.emit(NodeFailed(node_id=node_id, attempt=attempt, error=error))
        if self.spec(node_id).on_error == "fail":
            self.emit(RunFailed(node_id=node_id, error=error))

    def resolve_approval(self, node_id: str) -> None:
        data = self.state.signals[node_id]
        approved = isinstance(data, dict) and data.get("approve") is True
        if approved:
            self.emit(NodeSucceeded(node_id=node_id, attempt=1, output=data))
        else:
            self.node_failed(node_id, 1, ErrorInfo(code="rejected", message="the approval was rejected", detail=data))

    def context(self) -> dict[str, Any]:
        state = self.state
        return {
            "inputs": state.inputs,
            "nodes": {
                nid: {"output": n.output, "status": n.status}
                for nid, n in state.nodes.items()
                if n.status in ENDED_NODE
            },
            "run": {
                "id": state.run_id,
                "workflow": state.workflow,
                "version": state.version,
                "tenant": state.tenant_id,
            },
        }

    def advance(self) -> None:
        """Start every node whose dependencies have ended; end the run when nothing is left."""
        definition = self.state.definition
        assert definition is not None
        for node_id in definition.topological_order():
            if self.state.terminal:
                return
            if self.state.nodes[node_id].status != "pending":
                continue
            spec = definition.nodes[node_id]
            deps = [self.state.nodes[d] for d in spec.depends_on]
            if any(d.status not in ENDED_NODE for d in deps):
                continue
            blocked = [d for d, n in zip(spec.depends_on, deps, strict=True) if n.status != "succeeded"]
            if blocked and spec.trigger == "all_success":
                self.emit(NodeSkipped(node_id=node_id, reason=f"dependency {blocked[0]} did not succeed"))
                continue
            self.begin(node_id, spec)
        if not self.state.terminal and all(n.status in ENDED_NODE for n in self.state.nodes.values()):
            self.finish()

    def begin(self, node_id: str, spec: NodeSpec) -> None:
        try:
            if spec.when is not None and not evaluate_condition(spec.when, self.context()):
                self.emit(NodeSkipped(node_id=node_id, reason="when is false"))
                return
            if isinstance(spec, TransformNode):
                self.emit(NodeSucceeded(node_id=node_id, attempt=1, output=render(spec.output, self.context())))
            elif isinstance(spec, MapNode):
                self.emit(NodeSucceeded(node_id=node_id, attempt=1, output=self.map_outputs(spec)))
            elif spec.kind == "sleep":
                self.emit(RunWaiting(node_id=node_id, reason="sleep", until=self.now + spec.duration))
            elif spec.kind == "approval":
                until = self.now + spec.timeout if spec.timeout is not None else None
                self.emit(RunWaiting(node_id=node_id, reason="approval", until=until))
                if node_id in self.state.signals:
                    self.resolve_approval(node_id)
            else:
                self.schedule(node_id, spec, 1)
        except TemplateError as err:
            self.node_failed(node_id, max(1, self.state.nodes[node_id].attempts), _template_failure(err))

    def map_outputs(self, spec: MapNode) -> list[Any]:
        context = self.context()
        items = render(spec.over, context)
        if not isinstance(items, list):
            raise TemplateError(f"map over must give a list, got {type(items).__name__}", template=spec.over)
        return [render(spec.node.output, {**context, "item": item, "index": i}) for i, item in enumerate(items)]

    def schedule(self, node_id: str, spec: NodeSpec, attempt: int) -> None:
        """Hand one attempt of a side-effecting node to its executor, with its timeout as a durable timer."""
        try:
            params = self.task_params(spec, attempt)
        except TemplateError as err:
            self.node_failed(node_id, attempt, _template_failure(err))
            return
        task_id = f"{self.state.run_id}:{node_id}:{attempt}"
        deadline = self.now + spec.timeout if spec.timeout is not None else None
        self.emit(NodeScheduled(node_id=node_id, kind=spec.kind, attempt=attempt, task_id=task_id, deadline=deadline))
        self.tasks.append(
            Task(
                task_id=task_id,
                run_id=self.state.run_id,
                tenant_id=self.state.tenant_id,
                node_id=node_id,
                kind=spec.kind,
                attempt=attempt,
                params=params,
                timeout=spec.timeout,
                correlation_id=self.state.correlation_id,
            )
        )

    def task_params(self, spec: NodeSpec, attempt: int) -> dict[str, Any]:
        """The fields of a side-effecting node that its executor needs, with their templates rendered."""
        params = spec.model_dump(
            mode="json",
            exclude={"kind", "depends_on", "when", "retry", "timeout", "trigger", "on_error", "description"},
        )
        context = self.context()
        for field in spec.template_fields:
            if params.get(field) is not None:
                params[field] = render(params[field], context, path=field)
        if isinstance(spec, AiNode):
            per_candidate = (spec.retry or DEFAULT_RETRY).max_attempts
            candidates = spec.candidates()
            index = min((attempt - 1) // per_candidate, len(candidates) - 1)
            del params["fallback"]
            params["provider"] = render(candidates[index].provider, context, path="provider")
            params["model"] = render(candidates[index].model, context, path="model")
            params["candidate"] = index
            params["workflow"] = self.state.workflow
            # The run's usage so far, so the executor can hold the call to a per-run budget exactly.
            params["run_usage"] = self.state.usage.model_dump(mode="json")
        return params

    def finish(self) -> None:
        definition = self.state.definition
        assert definition is not None
        try:
            outputs = render(definition.outputs, self.context())
        except TemplateError as err:
            self.emit(RunFailed(node_id=None, error=_template_failure(err)))
            return
        self.emit(RunSucceeded(outputs=outputs))


def _template_failure(err: TemplateError) -> ErrorInfo:
    return ErrorInfo(code=err.code, message=err.message, retryable=False, detail=err.detail)


def _causation_of(inbound: Inbound) -> str:
    message = inbound.message
    if isinstance(message, TaskResult):
        return message.task_id
    if isinstance(message, TimerFired):
        return message.timer_id
    return message.command_id
