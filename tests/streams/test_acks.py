"""The committable offset of records that finish out of order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.acks import AckTracker

TOPIC = "t.tasks.http"


def _owned(*partitions: int) -> AckTracker:
    tracker = AckTracker()
    tracker.assign([(TOPIC, p) for p in partitions])
    return tracker


def test_an_offset_is_committable_only_once_every_record_before_it_has_finished() -> None:
    tracker = _owned(0)
    gen = tracker.generation
    taken = [tracker.take(TOPIC, 0, offset, gen) for offset in (10, 11, 12)]
    acks = taken[0]
    assert acks is not None and all(t is acks for t in taken)
    # 10 and 11 still run, so a new owner must start from 10 again, not past 12.
    assert tracker.finish(acks, 12) == 10
    assert tracker.finish(acks, 10) == 11
    assert tracker.finish(acks, 11) == 13  # one past the newest finished record


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
    assert tracker.finish(fresh, 5) == 6


@given(st.permutations(list(range(20))))
def test_whatever_the_finishing_order_commits_never_pass_an_unfinished_record(order: list[int]) -> None:
    tracker = _owned(0)
    gen = tracker.generation
    acks = None
    for offset in range(20):
        acks = tracker.take(TOPIC, 0, offset, gen)
    assert acks is not None
    finished: set[int] = set()
    last = 0
    for offset in order:
        finished.add(offset)
        committed = tracker.finish(acks, offset)
        if committed is not None:
            assert committed > last
            last = committed
        # Everything below the committed offset has finished; the record at it has not.
        assert all(o in finished for o in range(last))
        assert last == 20 or last not in finished
    assert last == 20
