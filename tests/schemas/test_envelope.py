"""Event ids: derived from the run id and seq, exactly as ``uuid.uuid5`` would derive them."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import _EVENT_NAMESPACE, event_id_for


@given(run_id=st.text(min_size=1, max_size=300), seq=st.integers(min_value=1, max_value=2**40))
def test_event_id_is_the_uuid5_of_run_and_seq(run_id: str, seq: int) -> None:
    expected = uuid.uuid5(_EVENT_NAMESPACE, f"{run_id}/{seq}")
    assert event_id_for(run_id, seq) == str(expected)
    assert uuid.UUID(event_id_for(run_id, seq)).version == 5


def test_event_ids_recorded_before_stay_the_same() -> None:
    # Ids already on users' logs: a change in the derivation would make a replay disagree with them.
    assert event_id_for("run-1", 1) == "f2dfab39-6c26-57e9-9adf-b3f40c07a130"
    assert event_id_for("0f3c2a", 42) == "b4de4ebc-9d52-58d8-8791-a5ac5b06cfcd"
