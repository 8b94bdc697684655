"""The envelope every record on ``awe.events`` carries, and how its ids are derived.

Ids are derived from the run id and seq rather than drawn at random, so that replaying a run's messages
through ``decide`` reproduces byte-identical events.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_EVENT_NAMESPACE = uuid.UUID("6b3f4c1e-2a8d-4f0e-9a51-7d2c9e0b4a11")


class Envelope(BaseModel):
    """One immutable event of one run: the value of a record on ``awe.events``, keyed by the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    run_id: str
    tenant_id: str
    seq: int = Field(ge=1, description="1, 2, 3 ... per run, without gaps")
    type: str
    schema_version: int = 1
    time: datetime
    causation_id: str | None = None
    correlation_id: str | None = None
    #: Who the event acts for, when known (the user behind the command); absent otherwise.
    principal: str | None = Field(default=None, exclude_if=lambda value: value is None)
    payload: dict[str, Any] = Field(default_factory=dict)


def event_id_for(run_id: str, seq: int) -> str:
    """The deterministic id of a run's event number ``seq``."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{run_id}/{seq}"))


def timestamp(epoch_seconds: float) -> datetime:
    """An aware UTC datetime from epoch seconds (the clock reading that came in with a message)."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)
