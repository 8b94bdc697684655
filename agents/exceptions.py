"""Errors raised by the agents (orchestrator, executors, timers)."""

from __future__ import annotations

from schemas.ai import AICall
from schemas.exceptions import AweError


class AgentError(AweError):
    """Root of the errors raised by ``agents``."""

    code = "agent_error"


class InvalidRecordError(AgentError):
    """A record on an input topic could not be read; it goes to the dead-letter topic with this reason."""

    code = "invalid_record"


class ExecutionError(AgentError):
    """A node attempt failed; ``retryable`` and ``retry_after`` drive the orchestrator's retry decision.

    ``call`` is set when a model answered but the answer cannot be used (it failed its schema, or a content
    filter stopped it): the call is recorded, and its cost counted, all the same.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retryable: bool,
        retry_after: float | None = None,
        detail: object = None,
        call: AICall | None = None,
    ) -> None:
        super().__init__(message, code=code, retryable=retryable, detail=detail)
        self.retry_after = retry_after
        self.call = call


class ProviderError(ExecutionError):
    """An AI provider's failure, mapped to awe's codes (``rate_limited``, ``overloaded``, ``server_error``,
    ``timeout``, ``connection_error``, ``authentication``, ``invalid_request``, ``content_filter``,
    ``missing_credentials``, ``invalid_json``, ``schema_mismatch``, ``budget_exceeded``, ``unknown_provider``),
    with the provider's own message."""


class PluginError(ExecutionError):
    """A WASM plugin call failed; never retryable, since the same module on the same input fails the same way.

    Codes: ``fuel``, ``deadline``, ``memory``, ``stack``, ``output_size`` (a limit was reached, and the message
    names it), ``trap``, ``abi_violation``, ``invalid_output``, ``invalid_module``, ``denied_import``,
    ``unknown_plugin``.
    """

    def __init__(self, message: str, *, code: str, detail: object = None) -> None:
        super().__init__(message, code=code, retryable=False, detail=detail)
