"""Bedrock Runtime's Converse wire protocol on loopback, for driving boto3's ``bedrock-runtime`` client in tests.

``POST /model/{modelId}/converse`` answers JSON; ``POST /model/{modelId}/converse-stream`` answers an AWS event
stream (messageStart, contentBlockDelta..., contentBlockStop, messageStop, metadata). Errors carry the type in
``x-amzn-ErrorType`` and ``{"message": ...}`` in the body, as botocore's rest-json parser reads them. SigV4
signatures are not checked.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from typing import Any

from aiohttp import web

from tests.loopback import eventstream
from tests.loopback.script import LENGTH, REFUSAL, STOP, Answer, Failure, Reply, conversation
from tests.loopback.server import LoopbackServer, error_response

_FINISH = {STOP: "end_turn", LENGTH: "max_tokens", REFUSAL: "content_filtered"}

# scripted status -> (status sent, error type). Bedrock has no 401: bad credentials are a 403.
_ERRORS = {
    400: (400, "ValidationException"),
    401: (403, "UnrecognizedClientException"),
    403: (403, "AccessDeniedException"),
    404: (404, "ResourceNotFoundException"),
    408: (408, "ModelTimeoutException"),
    424: (424, "ModelErrorException"),
    429: (429, "ThrottlingException"),
    500: (500, "InternalServerException"),
    503: (503, "ServiceUnavailableException"),
}

# The exceptions ConverseStream can raise inside the stream; any other is sent as modelStreamErrorException.
_STREAM_EXCEPTIONS = {
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "serviceUnavailableException",
}


class BedrockServer(LoopbackServer):
    """A loopback Bedrock Runtime: ``boto3.client("bedrock-runtime", endpoint_url=server.url, ...)``.

    Requests are recorded under the decoded model id from the path (``anthropic.claude-3-5-haiku-20241022-v1:0``).
    """

    def _routes(self) -> list[web.RouteDef]:
        # ".+": botocore percent-encodes ":" and "/" (ARNs) in the model id; aiohttp matches the decoded path.
        return [
            web.post("/model/{model_id:.+}/converse", self._converse),
            web.post("/model/{model_id:.+}/converse-stream", self._converse_stream),
        ]

    async def _converse(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body, reply = await self._accept(request, stream=False)
        if reply.failure is not None:
            return _error_response(reply.failure)
        answer = _answer(reply, body)
        message = {"role": "assistant", "content": [{"text": answer.text}]}
        result = {
            "output": {"message": message},
            "stopReason": _FINISH.get(answer.finish, answer.finish),
            "usage": _usage(answer),
            "metrics": {"latencyMs": _millis_since(started)},
        }
        return web.json_response(result, headers=_headers())

    async def _converse_stream(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body, reply = await self._accept(request, stream=True)
        failure = reply.failure
        if failure is not None and failure.is_http(stream=True):
            return _error_response(failure)
        answer = _answer(reply, body)
        response = await self._open_stream(request, "application/vnd.amazon.eventstream", _headers())
        await response.write(eventstream.event("messageStart", _padded({"role": "assistant"})))
        pieces = answer.pieces if failure is None else answer.pieces[: failure.after_deltas]
        for piece in pieces:
            if answer.chunk_delay:
                await asyncio.sleep(answer.chunk_delay)
            delta = _padded({"contentBlockIndex": 0, "delta": {"text": piece}})
            await response.write(eventstream.event("contentBlockDelta", delta))
        if failure is not None:
            await response.write(eventstream.exception(_stream_exception(failure), failure.message))
            return response
        await response.write(eventstream.event("contentBlockStop", _padded({"contentBlockIndex": 0})))
        stop = _padded({"stopReason": _FINISH.get(answer.finish, answer.finish)})
        await response.write(eventstream.event("messageStop", stop))
        metadata = {"usage": _usage(answer), "metrics": {"latencyMs": _millis_since(started)}}
        await response.write(eventstream.event("metadata", _padded(metadata)))
        return response

    async def _accept(self, request: web.Request, *, stream: bool) -> tuple[dict[str, Any], Reply]:
        body: dict[str, Any] = await request.json()
        return body, await self._take(request, request.match_info["model_id"], body, stream)


def _answer(reply: Reply, body: dict[str, Any]) -> Answer:
    return reply.answer(*conversation(body.get("messages"), body.get("system")))


def _error_response(failure: Failure) -> web.Response:
    status, kind = _ERRORS.get(failure.status, (failure.status, _fallback_type(failure.status)))
    # The real header carries a namespace suffix that botocore strips; sending it keeps that path exercised.
    headers = {**_headers(), "x-amzn-ErrorType": f"{failure.error_type or kind}:http://internal.amazon.com/coral/"}
    return error_response(failure, status, {"message": failure.message}, headers)


def _fallback_type(status: int) -> str:
    return "InternalServerException" if status >= 500 else "ValidationException"


def _stream_exception(failure: Failure) -> str:
    kind = failure.error_type or _ERRORS.get(failure.status, (0, _fallback_type(failure.status)))[1]
    member = kind[:1].lower() + kind[1:]
    return member if member in _STREAM_EXCEPTIONS else "modelStreamErrorException"


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "inputTokens": answer.input_tokens,
        "outputTokens": answer.output_tokens,
        "totalTokens": answer.input_tokens + answer.output_tokens + answer.cached_tokens,
        "cacheReadInputTokens": answer.cached_tokens,
        "cacheWriteInputTokens": 0,
    }


def _padded(payload: dict[str, Any]) -> dict[str, Any]:
    # Bedrock pads every stream event with a random "p" field so lengths do not leak content; botocore ignores it.
    return {**payload, "p": secrets.token_urlsafe(6)}


def _millis_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _headers() -> dict[str, str]:
    return {"x-amzn-requestid": str(uuid.uuid4())}
