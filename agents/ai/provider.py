"""The one interface every AI provider implements, and the failures it raises.

``complete`` returns the whole answer; ``stream`` yields text deltas as they arrive and ends with the whole
answer. Each provider maps its SDK's errors onto one :class:`ProviderError` that carries the retry decision
(a rate limit is retryable and says when, a bad key is not), always with the provider's own message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from agents.exceptions import ProviderError
from schemas.ai import AIRequest, FinishReason, Usage


class Answer(BaseModel):
    """A model's whole answer as the provider reported it."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str | None = None
    finish_reason: FinishReason = "stop"
    usage: Usage = Usage()


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of the answer, as it streams."""

    text: str


def missing_credentials(provider: str, what: str) -> ProviderError:
    """The failure for a provider whose credentials are not configured: non-retryable, naming what to set."""
    return ProviderError(
        f"{provider}: no credentials; {what}",
        code="missing_credentials",
        retryable=False,
        detail={"provider": provider},
    )


def status_error(
    provider: str, model: str, status: int, message: str, *, retry_after: float | None = None
) -> ProviderError:
    """Map an HTTP status answered by a provider to awe's codes and retry decision."""
    detail = {"provider": provider, "model": model, "status": status}
    text = f"{provider} {model}: {message}"
    if status == 429:
        return ProviderError(text, code="rate_limited", retryable=True, retry_after=retry_after, detail=detail)
    if status in (529, 503):
        return ProviderError(text, code="overloaded", retryable=True, retry_after=retry_after, detail=detail)
    if status in (408, 504):
        return ProviderError(text, code="timeout", retryable=True, retry_after=retry_after, detail=detail)
    if status >= 500:
        return ProviderError(text, code="server_error", retryable=True, retry_after=retry_after, detail=detail)
    if status in (401, 403):
        return ProviderError(text, code="authentication", retryable=False, detail=detail)
    return ProviderError(text, code="invalid_request", retryable=False, detail=detail)


def timeout_error(provider: str, model: str, timeout: float) -> ProviderError:
    """The failure for a call that did not answer within ``timeout`` seconds: retryable."""
    return ProviderError(
        f"{provider} {model}: no answer within {timeout:g}s",
        code="timeout",
        retryable=True,
        detail={"provider": provider, "model": model},
    )


def connection_error(provider: str, model: str, err: BaseException) -> ProviderError:
    """The failure for a call that could not reach the provider: retryable."""
    return ProviderError(
        f"{provider} {model}: connection failed: {err}",
        code="connection_error",
        retryable=True,
        detail={"provider": provider, "model": model},
    )


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (a number of seconds) in response headers."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


class Provider(ABC):
    """One AI provider. Instances are shared by every call of a worker and created in its event loop."""

    name: ClassVar[str]
    #: Answers are made up locally (the echo provider): marked as such on the log.
    simulated: ClassVar[bool] = False

    @abstractmethod
    def check_credentials(self) -> None:
        """Raise a non-retryable ProviderError naming what to set if the credentials are missing."""

    @abstractmethod
    async def complete(self, request: AIRequest, *, timeout_s: float) -> Answer:
        """The whole answer to ``request``, or a ProviderError."""

    @abstractmethod
    def stream(self, request: AIRequest, *, timeout_s: float) -> AsyncIterator[Delta | Answer]:
        """Deltas as they arrive, then the whole answer (last); or a ProviderError."""

    async def aclose(self) -> None:  # noqa: B027 - most providers hold nothing to close
        """Release connections."""
