"""Anthropic's Messages API through ``anthropic.AsyncAnthropic``.

The SDK reads ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``; its own retries are off (awe's durable
retries decide). Anthropic counts cache reads and writes apart from ``input_tokens``; awe's usage counts
every input token in ``input_tokens`` and the cache reads again in ``cached_tokens``, as OpenAI does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import anthropic

from agents.ai.provider import (
    Answer,
    Delta,
    Provider,
    connection_error,
    missing_credentials,
    parse_retry_after,
    status_error,
    timeout_error,
)
from agents.exceptions import ProviderError
from schemas.ai import AIRequest, FinishReason, Usage

#: Anthropic requires ``max_tokens``; this is used when the node sets none.
DEFAULT_MAX_TOKENS = 1024

#: Anthropic's error types as HTTP statuses, for errors that arrive inside a stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}


class AnthropicProvider(Provider):
    """Messages, JSON and streamed (the SDK's event stream)."""

    name = "anthropic"

    def __init__(self) -> None:
        self._client: anthropic.AsyncAnthropic | None = None

    def check_credentials(self) -> None:
        if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
            raise missing_credentials(self.name, "set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for another server)")

    def _sdk(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(max_retries=0)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def complete(self, request: AIRequest, *, timeout_s: float) -> Answer:
        try:
            message = await self._sdk().messages.create(**_params(request), timeout=timeout_s)
        except anthropic.APIError as err:
            raise _mapped(err, request, timeout_s) from err
        text = "".join(block.text for block in message.content if block.type == "text")
        return Answer(
            text=text,
            model=message.model,
            finish_reason=_FINISH.get(message.stop_reason or "", "other"),
            usage=_usage(message.usage),
        )

    async def stream(self, request: AIRequest, *, timeout_s: float) -> AsyncIterator[Delta | Answer]:
        try:
            async with self._sdk().messages.stream(**_params(request), timeout=timeout_s) as events:
                async for text in events.text_stream:
                    if text:
                        yield Delta(text)
                message = await events.get_final_message()
        except anthropic.APIError as err:
            raise _mapped(err, request, timeout_s) from err
        yield Answer(
            text="".join(block.text for block in message.content if block.type == "text"),
            model=message.model,
            finish_reason=_FINISH.get(message.stop_reason or "", "other"),
            usage=_usage(message.usage),
        )


def _params(request: AIRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    if request.system:
        params["system"] = request.system
    if request.stop:
        params["stop_sequences"] = request.stop
    if request.temperature is not None:
        # This SDK release dropped `temperature` from its signature; the API still reads it.
        params["extra_body"] = {"temperature": request.temperature}
    return params


def _usage(usage: Any) -> Usage:
    cache_read = getattr(usage, "cache_read_input_tokens", None) or 0
    cache_write = getattr(usage, "cache_creation_input_tokens", None) or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=cache_read,
    )


def _mapped(err: anthropic.APIError, request: AIRequest, timeout: float) -> ProviderError:
    if isinstance(err, anthropic.APITimeoutError):
        return timeout_error("anthropic", request.model, timeout)
    if isinstance(err, anthropic.APIConnectionError):
        return connection_error("anthropic", request.model, err)
    status = err.status_code if isinstance(err, anthropic.APIStatusError) else 0
    if status < 400:
        # An error event inside a stream that had started with 200: its type says what it was.
        body = err.body if isinstance(err.body, dict) else {}
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        kind = str(inner.get("type")) if isinstance(inner, dict) else ""
        status = _ERROR_STATUS.get(kind, 500)
    headers = err.response.headers if isinstance(err, anthropic.APIStatusError) else None
    return status_error("anthropic", request.model, status, _message(err), retry_after=parse_retry_after(headers))


def _message(err: anthropic.APIError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return err.message
