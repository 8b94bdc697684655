"""The committable offset of records that finish out of order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.acks import AckTracker, Commit, OutputStart

TOPIC = "t.tasks.http"


def _owned(*partitions: int) -> AckTracker:
    tracker = AckTracker()
    tracker.assign([(TOPIC, p) for p in partitions])
    return tracker


def _offset(commit: Commit | None) -> int | None:
    return None if commit is None else commit.offset


def test_an_offset_is_committable_only_once_every_record_before_it_has_finished() -> None:
    tracker = _owned(0)
    gen = tracker.generation
    taken = [tracker.take(TOPIC, 0, offset, gen) for offset in (10, 11, 12)]
    acks = taken[0]
    assert acks is not None and all(t is acks for t in taken)
    # 10 and 11 still run, so a new owner must start from 10 again, not past 12.
    assert _offset(tracker.finish(acks, 12)) == 10
    assert _offset(tracker.finish(acks, 10)) == 11
    assert _offset(tracker.finish(acks, 11)) == 13  # one past the newest finished record


def test_records_read_before_a_rebalance_are_not_taken_and_a_revoked_partition_commits_nothing() -> None:
    tracker = _owned(0, 1)
    before = tracker.generation
    acks = tracker.take(TOPIC, 1, 5, before)
    assert acks is not None
    tracker.revoke([(TOPIC, 1)])
    assert tracker.take(TOPIC, 0, 7, before) is None  # read for the old assignment: its owner reads it again
    assert tracker.finish(acks, 5) is None  # the new owner commits partition 1
    assert not acks.live
    tracker.assign([(TOPIC, 1)])
    fresh = tracker.take(TOPIC, 1, 5, tracker.generation)
    assert fresh is not None and fresh is not acks
    assert _offset(tracker.finish(fresh, 5)) == 6


@given(st.permutations(list(range(20))))
def test_whatever_the_finishing_order_commits_never_pass_an_unfinished_record(order: list[int]) -> None:
    tracker = _owned(0)
    gen = tracker.generation
    acks = None
    for offset in range(20):
        acks = tracker.take(TOPIC, 0, offset, gen)
    assert acks is not None
    finished: set[int] = set()
    last = -1
    for offset in order:
        finished.add(offset)
        committed = _offset(tracker.finish(acks, offset))
        if committed is not None:
            assert committed > last
            last = committed
        # Everything below the committed offset has finished; the record at it has not.
        assert all(o in finished for o in range(last))
        assert last == 20 or last not in finished
    assert last == 20


def test_the_resume_point_finds_the_output_of_a_record_finished_ahead_of_an_older_one() -> None:
    tracker = AckTracker()
    tracker.assign([(TOPIC, 0)], {(TOPIC, 0): OutputStart(end=500)})
    gen = tracker.generation
    acks = tracker.take(TOPIC, 0, 10, gen)
    assert acks is not None
    tracker.take(TOPIC, 0, 11, gen)
    # 11 answered at output 503 while 10 still runs: a new owner reads 10 and 11 again, and must find 503.
    assert tracker.finish(acks, 11, 503) == Commit(10, 503)
    # 10 written at 504: nothing is read again, and whatever this owner writes next lands past 504.
    assert tracker.finish(acks, 10, 504) == Commit(12, 505)


def test_with_nothing_written_the_resume_point_is_where_the_outputs_ended_at_assignment() -> None:
    tracker = AckTracker()
    tracker.assign([(TOPIC, 0)], {(TOPIC, 0): OutputStart(end=42)})
    acks = tracker.take(TOPIC, 0, 0, tracker.generation)
    assert acks is not None
    assert tracker.finish(acks, 0) == Commit(1, 42)


def test_the_previous_owners_resume_point_holds_until_every_record_it_left_has_finished() -> None:
    start = OutputStart(end=700, floor=650, records_end=3, answered=frozenset({"run:a:1"}))
    tracker = AckTracker()
    tracker.assign([(TOPIC, 0)], {(TOPIC, 0): start})
    gen = tracker.generation
    acks = tracker.take(TOPIC, 0, 0, gen)
    assert acks is not None and acks.answered == {"run:a:1"}
    for offset in (1, 2, 3):
        tracker.take(TOPIC, 0, offset, gen)
    # Records 1 and 2 may be the previous owner's, answered somewhere past 650: a third owner must look there.
    assert tracker.finish(acks, 0, 701) == Commit(1, 650)
    assert tracker.finish(acks, 1) == Commit(2, 650)
    assert tracker.finish(acks, 2) == Commit(3, 702)
    assert tracker.finish(acks, 3, 702) == Commit(4, 703)


@given(st.permutations(list(range(12))), st.sets(st.integers(0, 11)))
def test_every_output_a_new_owner_needs_is_at_or_past_the_resume_point(order: list[int], silent: set[int]) -> None:
    """Outputs are written in the order records finish, as one producer writes them; some records write none."""
    tracker = AckTracker()
    tracker.assign([(TOPIC, 0)], {(TOPIC, 0): OutputStart(end=100)})
    gen = tracker.generation
    acks = None
    for offset in range(12):
        acks = tracker.take(TOPIC, 0, offset, gen)
    assert acks is not None
    written: dict[int, int] = {}
    next_output = 100
    for offset in order:
        output = None
        if offset not in silent:
            output = written[offset] = next_output
            next_output += 1
        commit = tracker.finish(acks, offset, output)
        if commit is None:
            continue
        redelivered = [o for o in written if o >= commit.offset]
        assert all(written[o] >= commit.resume for o in redelivered)
        assert commit.resume <= next_output  # and so is every output still to be written
