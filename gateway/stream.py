"""``/v1/stream``: the WebSocket protocol (docs/gateway.md).

Client to server, JSON text messages:
- ``{"op": "subscribe", "run_id" | "workflow" | "all": true, "from_seq"?, "from_offsets"?, "tokens"?}``
- ``{"op": "unsubscribe", "run_id" | "workflow" | "all": true}``
- ``{"op": "pong"}`` in answer to each ``{"type": "ping"}``

Server to client: ``subscribed``, ``unsubscribed``, ``event``, ``token``, ``ping`` and
``{"type": "error", "code", "message"}``. A client is authenticated in the upgrade request
(``Authorization: Bearer ...``, or ``?token=`` for browsers) before the connection is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.auth import Principal
from gateway.connection import CLOSE_SLOW_CONSUMER, CLOSE_TOO_LARGE, Connection
from gateway.exceptions import GatewayError
from gateway.history import RawEvent, read, read_run
from gateway.hub import Key, Subscription
from gateway.ratelimit import TokenBucket
from gateway.state import Gateway, gateway_of

CLOSE_TIMEOUT_S = 10.0


class Subscribe(BaseModel):
    """A subscribe or unsubscribe request: exactly one of ``run_id``, ``workflow`` and ``all``."""

    model_config = ConfigDict(extra="forbid")

    op: str
    id: str | int | None = None
    run_id: str | None = Field(default=None, min_length=1, max_length=200)
    workflow: str | None = Field(default=None, min_length=1, max_length=200)
    all: bool = False
    tokens: bool = False
    from_seq: int | None = Field(default=None, ge=1)
    from_offsets: dict[int, int] | None = None

    @model_validator(mode="after")
    def _one_filter(self) -> Subscribe:
        if (self.run_id is not None) + (self.workflow is not None) + self.all != 1:
            raise ValueError("give exactly one of run_id, workflow and all: true")
        if self.from_seq is not None and self.run_id is None:
            raise ValueError("from_seq is per run: use it with run_id (from_offsets resumes the others)")
        if self.from_offsets is not None and self.run_id is not None:
            raise ValueError("from_offsets resumes workflow and all subscriptions; a run resumes with from_seq")
        return self

    def key(self, tenant: str) -> Key:
        """The hub's index key, under the caller's tenant."""
        if self.run_id is not None:
            return ("run", tenant, self.run_id)
        if self.workflow is not None:
            return ("workflow", tenant, self.workflow)
        return ("all", tenant)

    def echo(self) -> dict[str, Any]:
        """The filter as the client gave it, for acknowledgements."""
        shown: dict[str, Any] = {"id": self.id} if self.id is not None else {}
        if self.run_id is not None:
            shown["run_id"] = self.run_id
        elif self.workflow is not None:
            shown["workflow"] = self.workflow
        else:
            shown["all"] = True
        return shown


def _error(code: str, message: str) -> str:
    return orjson.dumps({"type": "error", "code": code, "message": message}).decode()


async def stream(websocket: WebSocket) -> None:
    """One WebSocket client, from the upgrade to the close."""
    gateway = gateway_of(websocket)
    try:
        principal = gateway.auth.authenticate(
            websocket.headers.get("authorization"), websocket.query_params.get("token")
        )
    except GatewayError as e:
        await _deny(websocket, e)
        return
    settings = gateway.settings
    await websocket.accept()

    finished = asyncio.Event()

    async def closer(code: int, reason: str) -> None:
        gateway.closes[reason] = gateway.closes.get(reason, 0) + 1
        sender.cancel()
        try:
            if code != CLOSE_SLOW_CONSUMER:
                # What is queued (the error that explains the close, say) goes first; a slow consumer's
                # backlog is exactly what it cannot take, so it is dropped and the client resumes instead.
                await asyncio.wait_for(_drain(websocket, connection), CLOSE_TIMEOUT_S)
            await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_S)
        except Exception:  # the client is gone or does not read: either way this connection is over
            pass
        finally:
            finished.set()

    connection = Connection(
        principal,
        settings.ws_send_queue,
        TokenBucket.full(settings.ws_rate_limit, settings.ws_rate_burst),
        closer,
    )
    loop = asyncio.get_running_loop()
    sender = loop.create_task(_send_loop(websocket, connection))
    receiver = loop.create_task(_receive_loop(websocket, gateway, connection))
    # When this side is closing, the closer says when it is over; else the client's leaving ends it.
    receiver.add_done_callback(lambda _task: None if connection.closing else finished.set())
    gateway.hub.join(connection)
    try:
        # Over when the client goes (the receiver ends) or when this side closed it (the closer ends).
        await finished.wait()
    finally:
        gateway.hub.drop(connection)
        connection.closing = True
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await connection.cancel_tasks()


async def _deny(websocket: WebSocket, error: GatewayError) -> None:
    """Refuse the upgrade with the error's HTTP status where the server can, else close before accepting."""
    body = orjson.dumps({"error": {"code": error.code, "message": error.message, "detail": error.detail}})
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send(
            {
                "type": "websocket.http.response.start",
                "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await websocket.send({"type": "websocket.http.response.body", "body": body})
    else:
        await websocket.close(4000 + error.status, error.code)


async def _send_loop(websocket: WebSocket, connection: Connection) -> None:
    while True:
        message = await connection.queue.get()
        await websocket.send_text(message)


async def _drain(websocket: WebSocket, connection: Connection) -> None:
    while not connection.queue.empty():
        await websocket.send_text(connection.queue.get_nowait())


async def _receive_loop(websocket: WebSocket, gateway: Gateway, connection: Connection) -> None:
    limit = gateway.settings.ws_max_message_bytes
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            # RuntimeError: a close this side sent raced the receive; KeyError: a binary frame (no "text").
            return
        if len(text) > limit:
            connection.offer(_error("message_too_large", f"messages are limited to {limit} bytes"))
            connection.close(CLOSE_TOO_LARGE, "message_too_large")
            return
        _handle(gateway, connection, text)


def _handle(gateway: Gateway, connection: Connection, text: str) -> None:
    try:
        message: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        message = None
    op = message.get("op") if isinstance(message, dict) else None
    if op == "pong":
        # Never rate limited: a busy client must not be closed for missing heartbeats it answered.
        connection.missed_pongs = 0
        return
    if connection.limiter.take() > 0:
        connection.offer(_error("rate_limited", "too many messages; slow down"))
        return
    if not isinstance(message, dict):
        connection.offer(_error("invalid_json", "messages are JSON objects"))
        return
    if op not in ("subscribe", "unsubscribe"):
        connection.offer(_error("unknown_op", "op is one of subscribe, unsubscribe, pong"))
        return
    try:
        request = Subscribe.model_validate(message)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        connection.offer(_error("invalid_subscription", f"{where}: {first['msg']}" if where else first["msg"]))
        return
    tenant = connection.principal.tenant
    key = request.key(tenant)
    if op == "unsubscribe":
        removed = gateway.hub.remove(connection, key)
        if not removed:
            connection.offer(_error("not_subscribed", "no such subscription on this connection"))
            return
        connection.offer(orjson.dumps({"type": "unsubscribed", **request.echo()}).decode())
        return
    resume = request.from_seq is not None or request.from_offsets is not None
    if resume:
        # Held from before the subscription starts matching, so no live event slips between history and live.
        connection.holding += 1
    gateway.hub.add(Subscription(connection, key, request.tokens))
    connection.offer(orjson.dumps({"type": "subscribed", **request.echo(), "tokens": request.tokens}).decode())
    if resume:
        connection.spawn(_resume(gateway, connection, request))


async def _resume(gateway: Gateway, connection: Connection, request: Subscribe) -> None:
    """Send the history a resuming subscription asks for, then what was held while reading it."""
    try:
        events = await gateway.blocking(_read_history, gateway, connection.principal, request)
        await connection.send_history(events)
    except Exception as e:  # a failed read is the client's to know about, not the connection's end
        connection.offer(_error("history_unavailable", f"could not read the history: {e}"))
    finally:
        connection.release()


def _read_history(gateway: Gateway, principal: Principal, request: Subscribe) -> list[RawEvent]:
    tenant = principal.tenant
    topic = gateway.events_topic
    if request.run_id is not None:
        where = gateway.directory.locate(request.run_id)
        if where is None:
            return []  # not started as far as this gateway has read: everything about it is still to come live
        events = read_run(gateway.settings, topic, request.run_id, where[0], where[1], from_seq=request.from_seq or 1)
        return [e for e in events if e.tenant_id == tenant]
    starts = {p: o for p, o in (request.from_offsets or {}).items() if 0 <= p < gateway.settings.partitions and o >= 0}
    workflow = request.workflow

    def accept(event: RawEvent) -> bool:
        return event.tenant_id == tenant and (
            workflow is None or gateway.directory.workflow_of(event.run_id) == workflow
        )

    return read(gateway.settings, topic, starts, accept)
