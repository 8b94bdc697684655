"""OpenAI, and any server that speaks its Chat Completions API (Ollama, vLLM ...), through ``openai.AsyncOpenAI``.

The SDK reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``. Its own retries are off: awe's durable retries
decide, so a rate limit's ``retry-after`` reaches the orchestrator instead of blocking a worker slot.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import openai

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

#: Models that take ``max_completion_tokens`` and refuse ``max_tokens`` (reasoning models).
_COMPLETION_TOKEN_MODELS = ("o1", "o3", "o4", "gpt-5")

#: OpenAI's error types as HTTP statuses, for errors that arrive inside a stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_exceeded": 429,
    "tokens": 429,
    "requests": 429,
    "server_error": 500,
}

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


class OpenAIProvider(Provider):
    """Chat Completions, JSON and streamed (with usage in the last chunk)."""

    name = "openai"

    def __init__(self) -> None:
        self._client: openai.AsyncOpenAI | None = None

    def check_credentials(self) -> None:
        if not os.environ.get("OPENAI_API_KEY"):
            raise missing_credentials(self.name, "set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server)")

    def _sdk(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(max_retries=0)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def complete(self, request: AIRequest, *, timeout_s: float) -> Answer:
        try:
            response = await self._sdk().chat.completions.create(**_params(request), timeout=timeout_s)
        except openai.APIError as err:
            raise _mapped(err, request, timeout_s) from err
        choice = response.choices[0] if response.choices else None
        return Answer(
            text=(choice.message.content or "") if choice else "",
            model=response.model,
            finish_reason=_FINISH.get(choice.finish_reason if choice else "", "other"),
            usage=_usage(response.usage),
        )

    async def stream(self, request: AIRequest, *, timeout_s: float) -> AsyncIterator[Delta | Answer]:
        parts: list[str] = []
        finish: FinishReason = "other"
        model: str | None = None
        usage = Usage()
        try:
            chunks = await self._sdk().chat.completions.create(
                **_params(request), stream=True, stream_options={"include_usage": True}, timeout=timeout_s
            )
            async with chunks:
                async for chunk in chunks:
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        if choice.delta.content:
                            parts.append(choice.delta.content)
                            yield Delta(choice.delta.content)
                        if choice.finish_reason:
                            finish = _FINISH.get(choice.finish_reason, "other")
        except openai.APIError as err:
            raise _mapped(err, request, timeout_s) from err
        yield Answer(text="".join(parts), model=model, finish_reason=finish, usage=usage)


def _params(request: AIRequest) -> dict[str, Any]:
    messages: list[dict[str, str]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend({"role": m.role, "content": m.content} for m in request.messages)
    params: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.max_tokens is not None:
        key = "max_completion_tokens" if request.model.startswith(_COMPLETION_TOKEN_MODELS) else "max_tokens"
        params[key] = request.max_tokens
    if request.stop:
        params["stop"] = request.stop
    if request.response.format == "json":
        schema = request.response.json_schema
        params["response_format"] = (
            {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
            if schema is not None
            else {"type": "json_object"}
        )
    return params


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(getattr(details, "cached_tokens", None) or 0) if details is not None else 0,
    )


def _mapped(err: openai.APIError, request: AIRequest, timeout: float) -> ProviderError:
    if isinstance(err, openai.APITimeoutError):
        return timeout_error("openai", request.model, timeout)
    if isinstance(err, openai.APIConnectionError):
        return connection_error("openai", request.model, err)
    message = _message(err)
    detail = {"provider": "openai", "model": request.model}
    code = getattr(err, "code", None)
    if code in ("content_filter", "content_policy_violation"):
        return ProviderError(
            f"openai {request.model}: {message}", code="content_filter", retryable=False, detail=detail
        )
    if code == "insufficient_quota":
        # A 429 that waiting does not cure: the account is out of credit.
        return ProviderError(
            f"openai {request.model}: {message}", code="quota_exceeded", retryable=False, detail=detail
        )
    if isinstance(err, openai.APIStatusError):
        headers = err.response.headers
        return status_error("openai", request.model, err.status_code, message, retry_after=parse_retry_after(headers))
    # An error inside a stream that had started with 200: its type says what it was.
    kind = str(getattr(err, "type", None) or "")
    status = _ERROR_STATUS.get(kind, 500 if "server" in kind else 400)
    return status_error("openai", request.model, status, message)


def _message(err: openai.APIError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return err.message
