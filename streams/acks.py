"""At-least-once offset bookkeeping for a consumer that finishes records out of order and writes outputs.

Records of one partition are taken in order but finish in any order (an HTTP call can outlast the one after
it). An offset may be committed only once every record before it has finished, so a crash redelivers what
was in flight and never skips it: the committable offset of a partition is its oldest unfinished record,
or one past the newest finished record when none is in flight.

A record that finished ahead of an older one is delivered again after a crash although its output is
durable. So each commit also carries a resume point: an offset of the output partition at or before the
output of every record the next owner will read again. The next owner reads the outputs from there and
skips the records already answered (``streams/answered.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class OutputStart:
    """Where a newly assigned partition's outputs stand.

    ``end``: the output partition's end; this owner's outputs land at or past it. ``floor``: the previous
    owner's resume point, which still holds until every record that existed at assignment (below
    ``records_end``) has finished. ``answered``: the ids of records whose output was found past ``floor``.
    """

    end: int
    floor: int | None = None
    records_end: int = 0
    answered: frozenset[str] = frozenset()
    #: For a partition no owner has committed yet: its first offset, to commit at once with ``end`` as the
    #: resume point, so a crash before the first task's own commit still leaves the next owner a floor.
    first: int | None = None


class Commit(NamedTuple):
    """An offset to commit, and the resume point of the outputs that goes with it."""

    offset: int
    resume: int


@dataclass(eq=False, slots=True)
class PartitionAcks:
    """One partition's records in flight, for one assignment of it: a revoked assignment takes no more."""

    topic: str
    partition: int
    start: OutputStart = field(default_factory=lambda: OutputStart(end=0))
    in_flight: set[int] = field(default_factory=set)
    finished_up_to: int = -1
    # -1: a partition's first commit is made even at offset 0, since it carries the resume point.
    committed: int = -1
    live: bool = True
    # Record offset -> its output's offset, for finished records at or past ``committed``.
    outputs: dict[int, int] = field(default_factory=dict)
    next_output: int = 0

    def __post_init__(self) -> None:
        self.next_output = self.start.end

    @property
    def answered(self) -> frozenset[str]:
        """Records the previous owner already answered: skip them rather than run them again."""
        return self.start.answered

    def committable(self) -> int:
        """The offset to commit: the next record a new owner must read."""
        if self.in_flight:
            return min(self.in_flight)
        return self.finished_up_to + 1

    def resume(self) -> int:
        """The output offset from which a new owner finds the output of every record it reads again.

        Outputs not yet written land past ``next_output``: one producer's records reach a partition in the
        order they were sent.
        """
        point = min(self.outputs.values(), default=self.next_output)
        floor = self.start.floor
        if floor is not None and self.committed < self.start.records_end:
            point = min(point, floor)
        return point


class AckTracker:
    """The partitions a consumer owns, what is in flight in each, and what may be committed.

    Thread-safe: records are taken on one thread and finish on another (a producer's delivery callback).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: dict[tuple[str, int], PartitionAcks] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Changes at every assignment and revocation: records read before one belong to the old owner."""
        with self._lock:
            return self._generation

    def assign(
        self, partitions: list[tuple[str, int]], starts: Mapping[tuple[str, int], OutputStart] | None = None
    ) -> None:
        """Start tracking newly assigned partitions, with where their outputs stand when known."""
        with self._lock:
            self._generation += 1
            for topic, partition in partitions:
                start = (starts or {}).get((topic, partition))
                acks = PartitionAcks(topic, partition) if start is None else PartitionAcks(topic, partition, start)
                self._owned[(topic, partition)] = acks

    def revoke(self, partitions: list[tuple[str, int]]) -> None:
        """Stop tracking partitions; records of theirs that finish later are not committed by this owner."""
        with self._lock:
            self._generation += 1
            for key in partitions:
                acks = self._owned.pop(key, None)
                if acks is not None:
                    acks.live = False

    def take(self, topic: str, partition: int, offset: int, generation: int) -> PartitionAcks | None:
        """Mark a record read in ``generation`` in flight; ``None`` if the assignment has changed since.

        Such a record is left alone: the partition's owner now reads it again from the committed offset.
        """
        with self._lock:
            acks = self._owned.get((topic, partition))
            if acks is None or generation != self._generation:
                return None
            acks.in_flight.add(offset)
            return acks

    def finish(self, acks: PartitionAcks, offset: int, output: int | None = None) -> Commit | None:
        """Mark a record finished, with its output's offset once that is durable (``None``: it wrote none).

        The partition's new commit, if its offset moved; ``None`` too once the partition was revoked: its
        new owner commits it.
        """
        with self._lock:
            acks.in_flight.discard(offset)
            acks.finished_up_to = max(acks.finished_up_to, offset)
            if output is not None:
                acks.outputs[offset] = output
                acks.next_output = max(acks.next_output, output + 1)
            committable = acks.committable()
            if not acks.live or committable <= acks.committed:
                return None
            acks.committed = committable
            for done in [o for o in acks.outputs if o < committable]:
                del acks.outputs[done]
            return Commit(committable, acks.resume())
