"""Errors of the gateway, each with the HTTP status it answers and a stable ``code``.

Every error a client sees is ``{"error": {"code", "message", "detail"}}`` (``gateway/errors.py``); the
classes here are the only place a status is chosen.
"""

from __future__ import annotations

from typing import Any

from schemas.exceptions import AweError


class GatewayError(AweError):
    """Root of the gateway's errors: an HTTP ``status``, a stable ``code``, a message and optional detail."""

    code = "gateway_error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, detail: Any = None) -> None:
        super().__init__(message, code=code, detail=detail)


class InvalidRequestError(GatewayError):
    """The body is not JSON, or does not fit the schema, or the inputs do not fit the workflow (with paths)."""

    code = "invalid_request"
    status = 422

    @classmethod
    def at(cls, path: str, message: str, code: str = "invalid_request") -> InvalidRequestError:
        """The error of one problem at a field path (``workflow``, ``query:limit``, ``header:Idempotency-Key``)."""
        return cls(message, code=code, detail={"problems": [{"path": path, "message": message}]})


class UnauthorizedError(GatewayError):
    """Missing, unknown, expired or badly signed credentials."""

    code = "unauthorized"
    status = 401


class ForbiddenError(GatewayError):
    """The caller's role does not allow the action."""

    code = "forbidden"
    status = 403


class NotFoundError(GatewayError):
    """No such resource for this tenant (another tenant's run is not found either)."""

    code = "not_found"
    status = 404


class ConflictError(GatewayError):
    """The request contradicts what is recorded (an idempotency key reused with another body)."""

    code = "conflict"
    status = 409


class PayloadTooLargeError(GatewayError):
    """The body is larger than ``AWE_GATEWAY_MAX_BODY_BYTES``."""

    code = "payload_too_large"
    status = 413


class UnsupportedMediaTypeError(GatewayError):
    """A body in a content type the route does not read."""

    code = "unsupported_media_type"
    status = 415


class RateLimitedError(GatewayError):
    """The tenant sent more requests than its rate allows; ``retry_after`` says when to try again."""

    code = "rate_limited"
    status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many requests; retry after {retry_after:.2f}s", detail={"retry_after": retry_after})
        self.retry_after = retry_after


class NotAvailableError(GatewayError):
    """A feature this gateway process was started without (replay, when no engine was handed in)."""

    code = "not_available"
    status = 501


class NotReadyError(GatewayError):
    """The gateway has not caught up with the event topic yet, or the broker does not answer."""

    code = "not_ready"
    status = 503


class ConfigurationError(GatewayError):
    """The gateway cannot start as configured (unreadable keys, an open gateway under --require-auth)."""

    code = "gateway_config"
