"""The ``http`` node kind: one HTTP request per attempt, with httpx.

A non-2xx answer fails the attempt: 5xx, 429 and connection errors are retryable (honouring
``Retry-After``), other 4xx are not. The output is ``{status, headers, json}`` or ``{status, headers, text}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from agents.exceptions import ExecutionError
from schemas.tasks import Task

DEFAULT_TIMEOUT_S = 30.0


class HttpHandler:
    """Carries out ``http`` tasks over one shared connection pool."""

    def __init__(self, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.AsyncClient(limits=limits, follow_redirects=True)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()

    async def __call__(self, task: Task) -> dict[str, Any]:
        p = task.params
        body = p.get("body")
        try:
            response = await self.client.request(
                p.get("method", "GET"),
                p["url"],
                headers=p.get("headers") or None,
                params=p.get("query") or None,
                json=body if body is not None else None,
                timeout=task.timeout or DEFAULT_TIMEOUT_S,
            )
        except httpx.TimeoutException as err:
            raise ExecutionError(f"request timed out: {err!r}", code="timeout", retryable=True) from err
        except httpx.InvalidURL as err:
            raise ExecutionError(f"invalid URL {p.get('url')!r}: {err}", code="invalid_url", retryable=False) from err
        except httpx.TransportError as err:
            raise ExecutionError(f"connection failed: {err!r}", code="connection_error", retryable=True) from err
        output = _output(response)
        if response.is_success:
            return output
        status = response.status_code
        raise ExecutionError(
            f"{p.get('method', 'GET')} {p['url']} answered {status}",
            code=f"http_{status}",
            retryable=status >= 500 or status == 429,
            retry_after=_retry_after(response),
            detail=output,
        )


def _output(response: httpx.Response) -> dict[str, Any]:
    out: dict[str, Any] = {"status": response.status_code, "headers": dict(response.headers)}
    if "json" in response.headers.get("content-type", ""):
        try:
            out["json"] = response.json()
            return out
        except ValueError:
            pass
    out["text"] = response.text
    return out


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
