"""Anthropic's Messages wire protocol on loopback, for driving ``anthropic.AsyncAnthropic`` in tests.

``POST /v1/messages``: a ``message`` JSON object, or with ``"stream": true`` the API's server-sent event sequence
(message_start, content_block_start, ping, content_block_delta..., content_block_stop, message_delta,
message_stop). Errors as ``{"type": "error", "error": {type, message}, "request_id": ...}``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web

from tests.loopback.script import LENGTH, REFUSAL, STOP, Answer, Failure, conversation
from tests.loopback.server import LoopbackServer, error_response, sse

_FINISH = {STOP: "end_turn", LENGTH: "max_tokens", REFUSAL: "refusal"}

_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class AnthropicServer(LoopbackServer):
    """A loopback Anthropic: point ``AsyncAnthropic(base_url=server.base_url)`` at it."""

    @property
    def base_url(self) -> str:
        """The SDK's ``base_url`` (the SDK adds ``/v1`` itself)."""
        return self.url

    def _routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/messages", self._messages)]

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        stream = bool(body.get("stream"))
        reply = await self._take(request, str(body.get("model", "")), body, stream)
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        headers = {"request-id": request_id}
        failure = reply.failure
        if failure is not None and failure.is_http(stream):
            return error_response(failure, failure.status, _error(failure, request_id), headers)
        answer = reply.answer(*conversation(body.get("messages"), body.get("system")))
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [{"type": "text", "text": answer.text}],
            "stop_reason": _FINISH.get(answer.finish, answer.finish),
            "stop_sequence": None,
            "usage": _usage(answer, answer.output_tokens),
        }
        if not stream:
            return web.json_response(message, headers=headers)
        return await self._stream(request, message, answer, failure, request_id)

    async def _stream(
        self, request: web.Request, message: dict[str, Any], answer: Answer, failure: Failure | None, request_id: str
    ) -> web.StreamResponse:
        response = await self._open_stream(request, "text/event-stream; charset=utf-8", {"request-id": request_id})

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(sse({"type": event, **data}, event))

        # The API opens with an empty message whose usage counts one output token so far.
        start = {**message, "content": [], "stop_reason": None, "usage": _usage(answer, 1)}
        await send("message_start", {"message": start})
        await send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        await send("ping", {})
        pieces = answer.pieces if failure is None else answer.pieces[: failure.after_deltas]
        for piece in pieces:
            if answer.chunk_delay:
                await asyncio.sleep(answer.chunk_delay)
            await send("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        if failure is not None:
            await send("error", _error(failure, request_id))
            return response
        await send("content_block_stop", {"index": 0})
        delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        await send("message_delta", {"delta": delta, "usage": {"output_tokens": answer.output_tokens}})
        await send("message_stop", {})
        return response


def _usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": answer.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": answer.cached_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _error(failure: Failure, request_id: str) -> dict[str, Any]:
    fallback = "api_error" if failure.status >= 500 else "invalid_request_error"
    kind = failure.error_type or _ERRORS.get(failure.status, fallback)
    return {"type": "error", "error": {"type": kind, "message": failure.message}, "request_id": request_id}
