"""Reading a run's events from ``awe.events``: in seq order, without duplicates, failing loudly on a gap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.envelope import Envelope
from schemas.exceptions import SequenceGapError
from streams.codec import decode
from streams.consuming import BOUNDED_READ, assign
from streams.partitioning import partition_for
from streams.retry import retry_retriable
from streams.settings import Settings
from streams.topics import Catalog, Role


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event with where it is stored."""

    partition: int
    offset: int
    envelope: Envelope
    #: The record's Kafka timestamp in epoch milliseconds (what ``offsets_for_times`` searches).
    timestamp_ms: int = 0


class RunReader:
    """Reads one run's events from its partition with a read_committed consumer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = Catalog(settings).name(Role.EVENTS)
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": "awe-run-reader",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 20,
                **BOUNDED_READ,
            }
        )

    def close(self) -> None:
        """Release the consumer."""
        self._consumer.close()

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def end_offset(self, run_id: str) -> int:
        """The current end of the run's partition: a start point that skips everything already written."""
        tp = TopicPartition(self.topic, partition_for(run_id, self.settings.partitions))
        return int(retry_retriable(lambda: self._consumer.get_watermark_offsets(tp, timeout=10, cached=False))[1])

    def events(
        self,
        run_id: str,
        *,
        from_offset: int | None = None,
        follow: bool = False,
        timeout: float | None = None,
        until_terminal: bool = False,
    ) -> Iterator[Envelope]:
        """Yield the run's events in seq order, each once.

        Without ``follow`` it stops at the partition's current end; with it, it waits for more (up to
        ``timeout`` seconds, forever when None). With ``until_terminal`` it stops after the run's last event.
        """
        for record in self.records(
            run_id, from_offset=from_offset, follow=follow, timeout=timeout, until_terminal=until_terminal
        ):
            yield record.envelope

    def records(
        self,
        run_id: str,
        *,
        from_offset: int | None = None,
        follow: bool = False,
        timeout: float | None = None,
        until_terminal: bool = False,
    ) -> Iterator[StoredEvent]:
        """As :meth:`events`, with each event's partition and offset."""
        partition = partition_for(run_id, self.settings.partitions)
        start = from_offset if from_offset is not None else OFFSET_BEGINNING
        assign(self._consumer, [TopicPartition(self.topic, partition, start)])
        deadline = None if timeout is None else time.monotonic() + timeout
        end = None if follow else self.end_offset(run_id)
        key = run_id.encode()
        seq = 0
        idle = 0
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return
            if end is not None and (self._position(partition) >= end or idle >= 3):
                return
            msg = self._consumer.poll(0.2)
            idle = idle + 1 if msg is None else 0
            if msg is None or msg.error() or msg.key() != key:
                continue
            envelope = decode(msg.value() or b"", Envelope)
            if envelope.seq <= seq:
                continue
            if envelope.seq != seq + 1:
                raise SequenceGapError(
                    f"run {run_id}: event seq {seq + 1} is missing (next found: {envelope.seq})",
                    detail={"run_id": run_id, "expected": seq + 1, "got": envelope.seq},
                )
            seq = envelope.seq
            yield StoredEvent(
                partition=partition, offset=int(msg.offset() or 0), envelope=envelope, timestamp_ms=msg.timestamp()[1]
            )
            if until_terminal and envelope.type in TERMINAL_EVENTS:
                return

    def _position(self, partition: int) -> int:
        tp = self._consumer.position([TopicPartition(self.topic, partition)])[0]
        return int(tp.offset) if tp.offset >= 0 else 0


TERMINAL_EVENTS = frozenset({"RunSucceeded", "RunFailed", "RunCancelled", "RunRejected"})
