"""At-least-once offset bookkeeping for a consumer that finishes records out of order.

Records of one partition are taken in order but finish in any order (an HTTP call can outlast the one after
it). An offset may be committed only once every record before it has finished, so a crash redelivers what
was in flight and never skips it: the committable offset of a partition is its oldest unfinished record,
or one past the newest finished record when none is in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(eq=False, slots=True)
class PartitionAcks:
    """One partition's records in flight, for one assignment of it: a revoked assignment takes no more."""

    topic: str
    partition: int
    in_flight: set[int] = field(default_factory=set)
    finished_up_to: int = -1
    committed: int = 0
    live: bool = True

    def committable(self) -> int:
        """The offset to commit: the next record a new owner must read."""
        if self.in_flight:
            return min(self.in_flight)
        return self.finished_up_to + 1


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

    def assign(self, partitions: list[tuple[str, int]]) -> None:
        """Start tracking newly assigned partitions."""
        with self._lock:
            self._generation += 1
            for topic, partition in partitions:
                self._owned[(topic, partition)] = PartitionAcks(topic, partition)

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

    def finish(self, acks: PartitionAcks, offset: int) -> int | None:
        """Mark a record finished (its output is durable); the partition's new committable offset, if it moved.

        ``None`` too once the partition was revoked: its new owner commits it.
        """
        with self._lock:
            acks.in_flight.discard(offset)
            acks.finished_up_to = max(acks.finished_up_to, offset)
            committable = acks.committable()
            if not acks.live or committable <= acks.committed:
                return None
            acks.committed = committable
            return committable
