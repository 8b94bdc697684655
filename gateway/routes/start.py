"""``POST /v1/runs``: validate the inputs against the definition, store StartRun, answer 202 ``{"run_id"}``.

The gateway's busiest path is served by a plain ASGI endpoint in front of Starlette's router. Starlette's
per-request machinery (the router, the Request object, the response class, the exception middleware's
wrappers around ``send``) costs about as much CPU as a bare Starlette endpoint's whole request
(docs/gateway.md); this endpoint reads the three headers it needs from the scope and the body from
``receive``, and sends its answer in two messages. Its failures are answered in the API's one error shape,
and anything unexpected still reaches the app's 500 handler.
"""

from __future__ import annotations

import time
from typing import cast

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth import Principal, Role
from gateway.bodies import StartRunBody, parse_model, receive_body
from gateway.directory import inputs_digest
from gateway.errors import gateway_error_response
from gateway.exceptions import GatewayError, InvalidRequestError
from gateway.idempotency import Start, is_retry, run_id_for
from gateway.metrics import observe_request
from gateway.state import Gateway, admit
from schemas.commands import StartRun, new_id
from schemas.exceptions import InputError
from schemas.validation import validate_inputs
from streams.codec import encode
from streams.registry import RegisteredDefinition

PATH = "/v1/runs"
MAX_KEY = 200
#: What the metrics count for a client that left before its body arrived (nginx's "client closed request").
CLIENT_CLOSED = 499
_CONTENT_TYPE = (b"content-type", b"application/json")
_REPLAYED = (b"idempotent-replayed", b"true")


async def resolve(gateway: Gateway, tenant: str, workflow: str, version: int | None) -> RegisteredDefinition:
    """The tenant's definition (the newest version when none is given), or a 422 ``unknown_workflow``."""
    found = gateway.registry.get(tenant, workflow, version)
    if found is None:
        found = await gateway.blocking(gateway.registry.resolve, tenant, workflow, version)
    if found is None:
        shown = workflow + (f" version {version}" if version is not None else "")
        raise InvalidRequestError.at("workflow", f"no workflow named {shown}", "unknown_workflow")
    return found


async def start(gateway: Gateway, principal: Principal, key: str | None, body: StartRunBody) -> tuple[str, bool]:
    """Start the run ``body`` asks for: its id, and whether the request was a retry of a start already made
    under the same ``Idempotency-Key`` (so nothing new was sent)."""
    tenant = principal.tenant
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise InvalidRequestError.at("header:Idempotency-Key", f"must be 1 to {MAX_KEY} characters")
    run_id = run_id_for(tenant, key) if key is not None else new_id()
    recorded = gateway.directory.recorded_start(run_id) if key is not None else None
    # A retry without a version asks for whatever version the first request resolved to.
    version = body.version if body.version is not None or recorded is None else recorded.version
    record = await resolve(gateway, tenant, body.workflow, version)
    try:
        inputs = validate_inputs(record.definition, body.inputs)
    except InputError as e:
        raise InvalidRequestError(e.message, code=e.code, detail=e.detail) from e
    asked = Start(tenant, record.name, record.version, inputs_digest(inputs) if key is not None else None)
    if key is not None and is_retry(asked, recorded, gateway.recent.get(run_id, tenant)):
        return run_id, True
    command = StartRun(
        run_id=run_id,
        tenant_id=tenant,
        workflow=record.name,
        version=record.version,
        inputs=body.inputs,
        principal=principal.name,
    )
    await gateway.producer.produce(gateway.commands_topic, run_id, encode(command))
    gateway.recent.remember(run_id, asked)
    return run_id, False


class StartRunEndpoint:
    """ASGI middleware that answers ``POST /v1/runs`` itself and passes every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        try:
            status = await _serve(scope, receive, send)
        finally:
            observe_request(PATH, "POST", status, time.perf_counter() - started)


async def _serve(scope: Scope, receive: Receive, send: Send) -> int:
    """Answer one start and return the status sent."""
    gateway = cast(Gateway, scope["state"]["gateway"])
    authorization = key = declared = None
    # ASGI servers give header names in lower case; as Starlette's ``Headers.get``, the first one counts.
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"idempotency-key" and key is None:
            key = value.decode("latin-1")
        elif name == b"content-length" and declared is None:
            declared = value.decode("latin-1")
    try:
        principal = admit(gateway, authorization, Role.OPERATOR)
        raw = await receive_body(receive, declared, gateway.settings.gateway_max_body_bytes)
        run_id, replayed = await start(gateway, principal, key, parse_model(raw, StartRunBody))
    except ClientDisconnect:
        return CLIENT_CLOSED
    except GatewayError as exc:
        await gateway_error_response(exc)(scope, receive, send)
        return exc.status
    body = orjson.dumps({"run_id": run_id})
    last = _REPLAYED if replayed else (b"location", f"{PATH}/{run_id}".encode())
    headers = [_CONTENT_TYPE, (b"content-length", str(len(body)).encode()), last]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return 202
