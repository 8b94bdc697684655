"""Schema evolution of the event store: every event type has a version, and upcasters read old ones.

``awe.events`` is kept forever, so events written by an older awe must still be read by a newer one.
When a payload model changes incompatibly, its version goes up by one and an upcaster turning the
previous version's payload into the new one is registered here. Every reader folds events through
:func:`upcast` (``evolve`` does), so the engine, the CLI, projections and replay only ever see the current
shapes; the log itself is never rewritten. Adding an optional field is compatible and needs no new
version. Every type is at version 1 in this release. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.envelope import Envelope
from schemas.exceptions import AweError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

#: The version each event type is written at.
CURRENT: dict[str, int] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class SchemaVersionError(AweError):
    """An event at a version this awe cannot read: newer than it knows, or with no upcaster registered."""

    code = "schema_version"


def current_version(event_type: str) -> int:
    """The version events of ``event_type`` are written at now."""
    return CURRENT.get(event_type, 1)


def register(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register an upcaster from ``from_version`` to ``from_version + 1``, and make that the current version
    if it is newer."""

    def add(upcaster: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = upcaster
        CURRENT[event_type] = max(current_version(event_type), from_version + 1)
        return upcaster

    return add


def upcast_payload(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` of an event written at ``version``, as the current version reads."""
    target = current_version(event_type)
    if version > target:
        raise SchemaVersionError(
            f"{event_type} version {version} was written by a newer awe (this one reads up to {target})",
            detail={"type": event_type, "version": version},
        )
    while version < target:
        upcaster = _UPCASTERS.get((event_type, version))
        if upcaster is None:
            raise SchemaVersionError(f"no upcaster for {event_type} version {version}")
        payload = upcaster(payload)
        version += 1
    return payload


def upcast(event: Envelope) -> Envelope:
    """The event at its type's current version (the same object when it already is)."""
    target = current_version(event.type)
    if event.schema_version == target:
        return event
    payload = upcast_payload(event.type, event.schema_version, event.payload)
    return event.model_copy(update={"payload": payload, "schema_version": target})
