"""The structured failure that crosses the wire: what went wrong and whether retrying can help."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorInfo(BaseModel):
    """A failure as recorded in results and events: a stable code, the message, and the retry decision."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    retryable: bool = False
    retry_after: float | None = None
    detail: Any = None
