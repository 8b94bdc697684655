"""The event store's read side: ``awe.events`` read by run and seq, by partition from an offset or a time,
live, and folded to a run's state at any seq, offset or time.

The fold is :func:`schemas.state.evolve`, the one the orchestrator, the CLI and the gateway share, so a
state read here is the state the engine had at that point.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from schemas.envelope import Envelope
from schemas.state import RunState, evolve
from streams.codec import decode
from streams.consuming import BOUNDED_READ, assign, next_batch
from streams.consuming import positions as batch_positions
from streams.projections import lookup_run
from streams.reader import RunReader, StoredEvent
from streams.retry import retry_retriable
from streams.settings import Settings
from streams.topics import Catalog, Role


class EventStore:
    """Reads ``awe.events`` with read_committed consumers: only what the engine committed is ever seen."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = Catalog(settings).name(Role.EVENTS)

    def run_events(
        self, run_id: str, *, from_seq: int = 1, to_seq: int | None = None, from_offset: int | None = None
    ) -> list[StoredEvent]:
        """A run's events with ``from_seq <= seq <= to_seq``, in seq order, with where each is stored.

        The run index (``awe projections``) says where the run's first event is, so the read starts there;
        a run the index does not know yet is found by reading its partition from the start.
        """
        if from_offset is None:
            found = lookup_run(self.settings, run_id)
            from_offset = found[1] if found is not None else None
        out: list[StoredEvent] = []
        with RunReader(self.settings) as reader:
            for record in reader.records(run_id, from_offset=from_offset):
                seq = record.envelope.seq
                if to_seq is not None and seq > to_seq:
                    break
                if seq >= from_seq:
                    out.append(record)
        return out

    def state_at(
        self,
        run_id: str,
        *,
        seq: int | None = None,
        offset: int | None = None,
        at: datetime | None = None,
    ) -> RunState:
        """The run as it stood after event ``seq``, after the record at ``offset`` of its partition, or at
        time ``at`` (the events stamped at or before it); its latest state when no bound is given."""
        state = RunState(run_id=run_id)
        for record in self.run_events(run_id, to_seq=seq):
            if offset is not None and record.offset > offset:
                break
            if at is not None and record.envelope.time > at:
                break
            state = evolve(state, record.envelope)
        return state

    def records(
        self,
        *,
        partitions: list[int] | None = None,
        from_offset: int | None = None,
        from_time: datetime | None = None,
        follow: bool = False,
        timeout: float | None = None,
    ) -> Iterator[StoredEvent]:
        """Every event of the given partitions (all by default) from an offset, a time, or the beginning.

        ``from_time`` is matched against the records' Kafka timestamps (``offsets_for_times``), which the
        producer stamps as it appends, a moment after the event's own ``time``.

        Without ``follow`` it stops at the end each partition had when reading began; with it, it waits for
        more, up to ``timeout`` seconds (forever when None). Events of different partitions interleave.
        """
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"awe-store-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,
                **BOUNDED_READ,
            }
        )
        try:
            chosen = partitions if partitions is not None else list(range(self.settings.partitions))
            starts = self._starts(consumer, chosen, from_offset, from_time)
            assign(consumer, starts)
            ends = {p: self._end(consumer, p) for p in chosen}
            positions = {
                tp.partition: ends[tp.partition] if tp.offset == OFFSET_END else max(tp.offset, 0) for tp in starts
            }
            deadline = None if timeout is None else time.monotonic() + timeout
            idle = 0
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    return
                if not follow and (idle >= 3 or all(positions[p] >= ends[p] for p in chosen)):
                    return
                batch = next_batch(consumer, 500, 0.2)
                idle = 0 if batch else idle + 1
                for p, reached in batch_positions(consumer, self.topic, chosen).items():
                    positions[p] = max(positions[p], reached)
                for message in batch:
                    partition, offset = message.partition(), message.offset()
                    if message.error() is not None or partition is None or offset is None:
                        continue
                    positions[partition] = offset + 1
                    envelope = decode(message.value() or b"", Envelope)
                    yield StoredEvent(
                        partition=partition, offset=offset, envelope=envelope, timestamp_ms=message.timestamp()[1]
                    )
        finally:
            consumer.close()

    def _starts(
        self, consumer: Consumer, partitions: list[int], from_offset: int | None, from_time: datetime | None
    ) -> list[TopicPartition]:
        if from_time is not None:
            wanted = [TopicPartition(self.topic, p, int(from_time.timestamp() * 1000)) for p in partitions]
            found = retry_retriable(lambda: consumer.offsets_for_times(wanted, timeout=10))
            # A partition with nothing at or after the time answers -1: start at its end.
            return [
                TopicPartition(self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END) for tp in found
            ]
        start = from_offset if from_offset is not None else OFFSET_BEGINNING
        return [TopicPartition(self.topic, p, start) for p in partitions]

    def _end(self, consumer: Consumer, partition: int) -> int:
        tp = TopicPartition(self.topic, partition)
        return int(retry_retriable(lambda: consumer.get_watermark_offsets(tp, timeout=10))[1])
