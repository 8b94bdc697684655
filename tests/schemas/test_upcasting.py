"""Schema evolution: events written at version 1 are read after their model moved to version 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import upcasting
from schemas.envelope import Envelope
from schemas.events import EVENT_TYPES, SignalReceived
from schemas.projections import Projections
from schemas.state import fold
from schemas.upcasting import SchemaVersionError, upcast

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


class SignalReceivedV2(SignalReceived):
    """A version 2 that requires who answered (version 1 did not record it)."""

    answered_by: str


def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    by = data.get("by") if isinstance(data, dict) else None
    return {**payload, "answered_by": by or "unknown"}


@pytest.fixture
def signal_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENT_TYPES, "SignalReceived", SignalReceivedV2)
    monkeypatch.setitem(upcasting._UPCASTERS, ("SignalReceived", 1), _v1_to_v2)
    monkeypatch.setitem(upcasting.CURRENT, "SignalReceived", 2)


def _triage() -> list[Envelope]:
    return [Envelope.model_validate(json.loads(line)) for line in (GOLDEN / "triage.jsonl").read_text().splitlines()]


@pytest.mark.usefixtures("signal_v2")
def test_version_1_events_are_read_through_the_upcaster_after_the_model_moved_to_version_2() -> None:
    events = _triage()
    signal = next(e for e in events if e.type == "SignalReceived")
    assert signal.schema_version == 1 and "answered_by" not in signal.payload
    read = upcast(signal)
    assert read.schema_version == 2 and read.payload["answered_by"] == "unknown"
    SignalReceivedV2.model_validate(read.payload)
    state = fold(events[0].run_id, events)  # evolve upcasts every event it folds
    assert state.status == "succeeded" and state.signals["review"] == signal.payload["data"]
    projections = Projections()
    for offset, event in enumerate(events):
        projections.apply(0, offset, event.model_dump(mode="json"))
    assert projections.runs[events[0].run_id]["status"] == "succeeded"


def test_without_the_upcaster_the_old_payload_would_not_fit_the_new_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENT_TYPES, "SignalReceived", SignalReceivedV2)
    monkeypatch.setitem(upcasting.CURRENT, "SignalReceived", 2)
    signal = next(e for e in _triage() if e.type == "SignalReceived")
    with pytest.raises(SchemaVersionError, match="no upcaster for SignalReceived version 1"):
        upcast(signal)


def test_an_event_from_a_newer_awe_is_refused_clearly() -> None:
    signal = next(e for e in _triage() if e.type == "SignalReceived").model_copy(update={"schema_version": 7})
    with pytest.raises(SchemaVersionError, match="written by a newer awe"):
        upcast(signal)
