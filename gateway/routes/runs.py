"""``/v1/runs``: list with filters, get, events after a seq, state at a seq, offset or time, signals, cancel,
fork and replay (``POST /v1/runs``, the start, is ``gateway/routes/start.py``). Every read is of the caller's
tenant; another's run is not found."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth import Principal, Role
from gateway.bodies import CancelBody, ForkBody, parse_json, parse_model, read_body
from gateway.exceptions import ConflictError, GatewayError, InvalidRequestError, NotAvailableError, NotFoundError
from gateway.history import RawEvent, read_run
from gateway.responses import JSONResponse
from gateway.state import Gateway, authorize
from schemas.commands import CancelRun, SignalRun
from schemas.envelope import Envelope
from schemas.exceptions import ForkError
from schemas.fork import plan_fork
from schemas.refusals import refuse_answer, refuse_cancel, refuse_signal
from schemas.state import RunState, evolve, run_view
from streams.client import CommandClient
from streams.codec import encode

# What a refused signal or cancel answers: a run or node that is not there is 404, one that no longer takes
# it 409.
_REFUSALS: dict[str, type[GatewayError]] = {"unknown_run": NotFoundError, "unknown_node": NotFoundError}

_STATUSES = {"running", "waiting", "succeeded", "failed", "cancelled", "rejected"}


def _int_param(
    request: Request, name: str, default: int | None, *, low: int = 0, high: int | None = None
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError.at(f"query:{name}", f"must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        top = high if high is not None else "any"
        raise InvalidRequestError.at(f"query:{name}", f"must be between {low} and {top}")
    return value


async def list_runs(request: Request) -> JSONResponse:
    """The tenant's runs, newest first: ``?status=&workflow=&parent=&limit=&before=<run id>``."""
    gateway, principal = authorize(request)
    gateway.require_ready()
    status = request.query_params.get("status")
    if status is not None and status not in _STATUSES:
        raise InvalidRequestError.at("query:status", f"must be one of {', '.join(sorted(_STATUSES))}")
    runs = gateway.directory.list(
        principal.tenant,
        status=status,
        workflow=request.query_params.get("workflow"),
        parent=request.query_params.get("parent"),
        limit=_int_param(request, "limit", 100, low=1, high=1000) or 100,
        before=request.query_params.get("before"),
    )
    return JSONResponse({"runs": runs})


async def _history(gateway: Gateway, principal: Principal, run_id: str, from_seq: int = 1) -> list[RawEvent] | None:
    """The run's events from ``from_seq``; None when the run is not the caller's (or not known yet)."""
    if gateway.directory.summary(run_id, principal.tenant) is None:
        return None
    where = gateway.directory.locate(run_id)
    if where is None:
        return None
    events = await gateway.blocking(
        read_run, gateway.settings, gateway.events_topic, run_id, where[0], where[1], from_seq
    )
    return [e for e in events if e.tenant_id == principal.tenant]


def _unknown(run_id: str) -> NotFoundError:
    return NotFoundError(f"no run {run_id}", code="unknown_run")


def _fold(run_id: str, events: list[RawEvent], until: Any = None) -> RunState:
    state = RunState(run_id=run_id)
    for raw in events:
        envelope = Envelope.model_validate_json(raw.value)
        if until is not None and not until(raw, envelope):
            break
        state = evolve(state, envelope)
    return state


async def get_run(request: Request) -> JSONResponse:
    """The run object of ``awe run --json``."""
    gateway, principal = authorize(request)
    run_id = request.path_params["run_id"]
    events = await _history(gateway, principal, run_id)
    if events is None:
        if gateway.recent.get(run_id, principal.tenant) is not None:
            # Started from here moments ago; its first event is not folded yet.
            return JSONResponse(
                {"run_id": run_id, "status": "running", "outputs": None, "nodes": {}, "error": None, "seq": 0}
            )
        raise _unknown(run_id)
    state = _fold(run_id, events)
    return JSONResponse({**run_view(state), "seq": state.seq})


async def run_events(request: Request) -> Response:
    """The run's events with ``seq > after_seq``, as stored: ``{"events": [<envelope>...], "last_seq"}``."""
    gateway, principal = authorize(request)
    run_id = request.path_params["run_id"]
    after = _int_param(request, "after_seq", 0) or 0
    limit = _int_param(request, "limit", 1000, low=1, high=10_000) or 1000
    events = await _history(gateway, principal, run_id, after + 1)
    if events is None:
        raise _unknown(run_id)
    chosen = events[:limit]
    last = chosen[-1].seq if chosen else after
    body = b'{"events":[' + b",".join(e.value for e in chosen) + b'],"last_seq":' + str(last).encode() + b"}"
    return Response(body, media_type="application/json")


def _time_param(raw: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(raw), tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRequestError.at("query:at_time", "must be ISO 8601 or epoch seconds") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def run_state(request: Request) -> JSONResponse:
    """The run as it stood after ``?at_seq=``, at ``?at_offset=`` of its partition, or at ``?at_time=``."""
    gateway, principal = authorize(request)
    run_id = request.path_params["run_id"]
    at_seq = _int_param(request, "at_seq", None)
    at_offset = _int_param(request, "at_offset", None)
    raw_time = request.query_params.get("at_time")
    if sum(x is not None for x in (at_seq, at_offset, raw_time)) > 1:
        raise InvalidRequestError.at("query", "give at most one of at_seq, at_offset and at_time")
    at_time = _time_param(raw_time) if raw_time is not None else None
    events = await _history(gateway, principal, run_id)
    if events is None:
        raise _unknown(run_id)

    def until(raw: RawEvent, envelope: Envelope) -> bool:
        return (
            (at_seq is None or envelope.seq <= at_seq)
            and (at_offset is None or raw.offset <= at_offset)
            and (at_time is None or envelope.time <= at_time)
        )

    state = _fold(run_id, events, until)
    if state.seq == 0:
        raise NotFoundError(f"run {run_id} had no events by then", code="no_events")
    return JSONResponse({**run_view(state), "seq": state.seq})


def _known(gateway: Gateway, principal: Principal, run_id: str) -> None:
    known = gateway.directory.summary(run_id, principal.tenant) is not None
    if not known and gateway.recent.get(run_id, principal.tenant) is None:
        raise _unknown(run_id)


async def signal(request: Request) -> JSONResponse:
    """Send a signal (any JSON body, or none) to a node of a run: 202 with the command id."""
    gateway, principal = authorize(request, Role.OPERATOR)
    run_id, node = request.path_params["run_id"], request.path_params["node"]
    raw = await read_body(request, gateway.settings.gateway_max_body_bytes)
    data = parse_json(raw) if raw.strip() else None
    _known(gateway, principal, run_id)
    events = await _history(gateway, principal, run_id)
    if events:  # a run started a moment ago may not be readable yet; the orchestrator still applies the rule
        refused = refuse_signal(_fold(run_id, events), node)
        if refused is not None:
            raise _REFUSALS.get(refused.code, ConflictError)(refused.message, code=refused.code)
        bad_answer = refuse_answer(data)
        if bad_answer is not None:
            raise InvalidRequestError.at("body", bad_answer.message, code=bad_answer.code)
    command = SignalRun(run_id=run_id, tenant_id=principal.tenant, node=node, data=data, principal=principal.name)
    await gateway.producer.produce(gateway.commands_topic, run_id, encode(command))
    return JSONResponse({"run_id": run_id, "command_id": command.command_id}, status_code=202)


async def cancel(request: Request) -> JSONResponse:
    """Cancel a run (``{"reason"}`` optional): 202 with the command id."""
    gateway, principal = authorize(request, Role.OPERATOR)
    run_id = request.path_params["run_id"]
    raw = await read_body(request, gateway.settings.gateway_max_body_bytes)
    body = parse_model(raw, CancelBody) if raw.strip() else CancelBody()
    _known(gateway, principal, run_id)
    events = await _history(gateway, principal, run_id)
    if events:  # as for a signal: a run started a moment ago may not be readable yet
        refused = refuse_cancel(_fold(run_id, events))
        if refused is not None:
            raise _REFUSALS.get(refused.code, ConflictError)(refused.message, code=refused.code)
    command = CancelRun(run_id=run_id, tenant_id=principal.tenant, reason=body.reason, principal=principal.name)
    await gateway.producer.produce(gateway.commands_topic, run_id, encode(command))
    return JSONResponse({"run_id": run_id, "command_id": command.command_id}, status_code=202)


async def fork_run(request: Request) -> JSONResponse:
    """Start a fork of a run (``awe fork``): 202 with the new run id, what it reuses and what it runs again."""
    gateway, principal = authorize(request, Role.OPERATOR)
    run_id = request.path_params["run_id"]
    body = parse_model(await read_body(request, gateway.settings.gateway_max_body_bytes), ForkBody)
    events = await _history(gateway, principal, run_id)
    if events is None:
        raise _unknown(run_id)
    parent = _fold(run_id, events)
    try:
        plan = plan_fork(parent, body.from_node, changes=body.set, inputs=body.inputs)
    except ForkError as e:
        raise InvalidRequestError(e.message, code=e.code, detail=e.detail) from e
    client = CommandClient(gateway.settings, tenant_id=principal.tenant, principal=principal.name)
    command = await gateway.blocking(
        lambda: client.fork(
            parent, from_node=body.from_node, definition=plan.definition, inputs=plan.inputs, reused=plan.reused
        )
    )
    return JSONResponse(
        {"run_id": command.run_id, "parent_run_id": run_id, "reused": sorted(plan.reused), "rerun": plan.rerun},
        status_code=202,
    )


async def replay_run(request: Request) -> JSONResponse:
    """Run the engine again over the run's recorded events, with no side effects, and compare (``awe replay``):
    200 with the report, ``identical`` true when the engine produced exactly what is recorded."""
    gateway, principal = authorize(request)
    run_id = request.path_params["run_id"]
    replayer = gateway.replayer
    if replayer is None:
        raise NotAvailableError("this gateway was started without the engine, so it cannot replay; use `awe gateway`")
    events = await _history(gateway, principal, run_id)
    if events is None:
        raise _unknown(run_id)
    envelopes = [Envelope.model_validate_json(e.value) for e in events]
    # decide is pure CPU work; a long run's replay must not hold up the loop's other requests.
    return JSONResponse(await gateway.blocking(replayer, envelopes))


ROUTES = [
    Route("/v1/runs", list_runs, methods=["GET"]),
    Route("/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/v1/runs/{run_id}/events", run_events, methods=["GET"]),
    Route("/v1/runs/{run_id}/state", run_state, methods=["GET"]),
    Route("/v1/runs/{run_id}/signals/{node}", signal, methods=["POST"]),
    Route("/v1/runs/{run_id}/cancel", cancel, methods=["POST"]),
    Route("/v1/runs/{run_id}/fork", fork_run, methods=["POST"]),
    Route("/v1/runs/{run_id}/replay", replay_run, methods=["POST"]),
]
