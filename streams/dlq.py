"""Dead-letter records: what was rejected, why, and where it came from, with the original bytes intact."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class DeadLetter(BaseModel):
    """The value of a record on ``awe.dlq``; the record keeps the original key."""

    model_config = ConfigDict(frozen=True)

    reason: str
    code: str
    source_topic: str
    partition: int
    offset: int
    original_base64: str
    original_text: str | None = None
    time: datetime

    @classmethod
    def of(cls, *, code: str, reason: str, topic: str, partition: int, offset: int, value: bytes | None) -> DeadLetter:
        """A dead letter for a record, keeping its bytes (also as text when they are UTF-8)."""
        raw = value or b""
        text: str | None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return cls(
            reason=reason,
            code=code,
            source_topic=topic,
            partition=partition,
            offset=offset,
            original_base64=base64.b64encode(raw).decode("ascii"),
            original_text=text,
            time=datetime.now(UTC),
        )

    def original(self) -> bytes:
        """The rejected record's value, byte for byte."""
        return base64.b64decode(self.original_base64)


def describe_validation_error(errors: Sequence[Mapping[str, Any]]) -> str:
    """A one-line summary of pydantic errors with their field paths."""
    parts = []
    for e in errors[:5]:
        path = ".".join(str(p) for p in e.get("loc", ())) or "(root)"
        parts.append(f"{path}: {e.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more
