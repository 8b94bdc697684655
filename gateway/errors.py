"""The one error shape of the REST API, ``{"error": {"code", "message", "detail"}}``, for every failure:
the gateway's own errors, Starlette's (unknown route, wrong method) and anything unexpected."""

from __future__ import annotations

import logging
import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.exceptions import GatewayError, RateLimitedError
from gateway.responses import JSONResponse

log = logging.getLogger("awe.gateway")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def error_response(status: int, code: str, message: str, detail: Any = None) -> JSONResponse:
    """An error in the API's shape."""
    return JSONResponse({"error": {"code": code, "message": message, "detail": detail}}, status_code=status)


def gateway_error_response(exc: GatewayError) -> JSONResponse:
    """A :class:`GatewayError` as its status and code (429s also say ``Retry-After``)."""
    response = error_response(exc.status, exc.code, exc.message, exc.detail)
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


async def on_gateway_error(_request: Request, exc: Exception) -> Response:
    """Starlette's handler for :class:`GatewayError`: :func:`gateway_error_response`."""
    assert isinstance(exc, GatewayError)
    return gateway_error_response(exc)


async def on_http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, method not allowed) in the same shape."""
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def on_unexpected(_request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback, answered without internals."""
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal", "internal error; the gateway's log has the details")


HANDLERS: dict[Any, Any] = {GatewayError: on_gateway_error, HTTPException: on_http_error, Exception: on_unexpected}
