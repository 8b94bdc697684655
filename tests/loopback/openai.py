"""OpenAI's Chat Completions wire protocol on loopback, for driving ``openai.AsyncOpenAI`` in tests.

``POST /v1/chat/completions``: a ``chat.completion`` JSON object, or with ``"stream": true`` server-sent
``chat.completion.chunk`` events ending in ``data: [DONE]``. Errors as ``{"error": {message, type, param, code}}``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiohttp import web

from tests.loopback.script import LENGTH, REFUSAL, STOP, Answer, Failure, conversation
from tests.loopback.server import LoopbackServer, error_response, sse

_FINISH = {STOP: "stop", LENGTH: "length", REFUSAL: "content_filter"}

# status -> (error.type, error.code), as the API sends them; unlisted 5xx are server_error.
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class OpenAIServer(LoopbackServer):
    """A loopback OpenAI: point ``AsyncOpenAI(base_url=server.base_url)`` at it."""

    @property
    def base_url(self) -> str:
        """The SDK's ``base_url``: `url` plus ``/v1``."""
        return f"{self.url}/v1"

    def _routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self._chat)]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        stream = bool(body.get("stream"))
        reply = await self._take(request, str(body.get("model", "")), body, stream)
        failure = reply.failure
        if failure is not None and failure.is_http(stream):
            return error_response(failure, failure.status, {"error": _error(failure)}, _headers())
        answer = reply.answer(*conversation(body.get("messages")))
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": body.get("model")}
        if not stream:
            return web.json_response(_completion(head, answer), headers=_headers())
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._stream(request, head, answer, failure, usage)

    async def _stream(
        self, request: web.Request, head: dict[str, Any], answer: Answer, failure: Failure | None, usage: bool
    ) -> web.StreamResponse:
        response = await self._open_stream(request, "text/event-stream; charset=utf-8", _headers())
        # With include_usage every chunk carries "usage": null until the last, which has the figures.
        extra = {"usage": None} if usage else {}
        await response.write(sse(_chunk(head, [_choice({"role": "assistant", "content": "", "refusal": None})], extra)))
        pieces = answer.pieces if failure is None else answer.pieces[: failure.after_deltas]
        for piece in pieces:
            if answer.chunk_delay:
                await asyncio.sleep(answer.chunk_delay)
            await response.write(sse(_chunk(head, [_choice({"content": piece})], extra)))
        if failure is not None:
            # The API reports a failure after the stream began as a data event holding an error object.
            await response.write(sse({"error": _error(failure)}))
            return response
        await response.write(sse(_chunk(head, [_choice({}, _finish(answer))], extra)))
        if usage:
            await response.write(sse(_chunk(head, [], {"usage": _usage(answer)})))
        await response.write(sse("[DONE]"))
        return response


def _completion(head: dict[str, Any], answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(answer)}
    return {
        **head,
        "object": "chat.completion",
        "choices": [choice],
        "usage": _usage(answer),
        "service_tier": "default",
        "system_fingerprint": "fp_loopback",
    }


def _chunk(head: dict[str, Any], choices: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        **head,
        "object": "chat.completion.chunk",
        "service_tier": "default",
        "system_fingerprint": "fp_loopback",
        "choices": choices,
        **extra,
    }


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _finish(answer: Answer) -> str:
    return _FINISH.get(answer.finish, answer.finish)


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _error(failure: Failure) -> dict[str, Any]:
    fallback = ("server_error" if failure.status >= 500 else "invalid_request_error", None)
    kind, code = _ERRORS.get(failure.status, fallback)
    return {"message": failure.message, "type": failure.error_type or kind, "param": None, "code": code}


def _headers() -> dict[str, str]:
    return {"x-request-id": f"req_{uuid.uuid4().hex}"}
