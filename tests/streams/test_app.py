"""The runs table's values: live runs as objects, finished runs as their JSON."""

from __future__ import annotations

from schemas.state import RunState
from streams.app import RunStateCodec, loaded_state, stored_state
from streams.codec import encode


def test_a_live_run_is_kept_as_its_state_and_a_finished_one_as_its_json() -> None:
    live = RunState(run_id="r1", status="running")
    done = RunState(run_id="r2", status="succeeded", seq=7)
    assert stored_state(live, encode(live)) is live
    kept = stored_state(done, encode(done))
    assert kept == encode(done)
    assert loaded_state(kept) == done
    assert loaded_state(live) is live and loaded_state(None) is None


def test_recovery_from_the_changelog_keeps_the_same_forms() -> None:
    codec = RunStateCodec()
    live = RunState(run_id="r1", status="waiting")
    done = RunState(run_id="r2", status="failed")
    assert codec.loads(codec.dumps(live)) == live
    assert codec.loads(codec.dumps(done)) == encode(done)
    # Faust writes a value it holds back as it is, whichever form it has.
    assert codec.dumps(encode(done)) == encode(done)
