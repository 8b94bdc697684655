"""Errors raised by the agents (orchestrator, executors, timers)."""

from __future__ import annotations

from schemas.exceptions import AweError


class AgentError(AweError):
    """Root of the errors raised by ``agents``."""

    code = "agent_error"


class InvalidRecordError(AgentError):
    """A record on an input topic could not be read; it goes to the dead-letter topic with this reason."""

    code = "invalid_record"


class ExecutionError(AgentError):
    """A node attempt failed; ``retryable`` and ``retry_after`` drive the orchestrator's retry decision."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retryable: bool,
        retry_after: float | None = None,
        detail: object = None,
    ) -> None:
        super().__init__(message, code=code, retryable=retryable, detail=detail)
        self.retry_after = retry_after
