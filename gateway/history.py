"""Reading stored events back from ``awe.events`` by offset, as the raw record values: what a resuming
WebSocket client and ``GET /v1/runs/{id}/events`` receive is byte for byte what the log holds, as live
events are. Blocking (a consumer of its own per read); callers run it in a thread pool, so history never
holds up the live fan-out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from streams.consuming import BOUNDED_READ, assign, next_batch
from streams.consuming import positions as batch_positions
from streams.retry import retry_retriable
from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One record of ``awe.events``: where it is, the fields routing needs, and its value as stored."""

    partition: int
    offset: int
    run_id: str
    tenant_id: str
    seq: int
    type: str
    value: bytes

    @classmethod
    def parse(cls, partition: int, offset: int, value: bytes) -> RawEvent | None:
        """The record as a RawEvent, or None when it is not an envelope (never written by the engine)."""
        try:
            event: Any = orjson.loads(value)
            return cls(
                partition,
                offset,
                str(event["run_id"]),
                str(event["tenant_id"]),
                int(event["seq"]),
                event["type"],
                value,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def _consumer(settings: Settings) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"awe-gateway-history-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 20,
            **BOUNDED_READ,
        }
    )


def end_offset(consumer: Consumer, topic: str, partition: int) -> int:
    """The partition's end (high watermark), asked of the broker now."""
    tp = TopicPartition(topic, partition)

    def ask() -> tuple[int, int]:
        low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
        return int(low), int(high)

    return retry_retriable(ask)[1]


def read(settings: Settings, topic: str, starts: dict[int, int], accept: Callable[[RawEvent], bool]) -> list[RawEvent]:
    """The accepted records of the given partitions from the given offsets up to each partition's end as
    it was when the read began, in offset order per partition."""
    consumer = _consumer(settings)
    out: list[RawEvent] = []
    try:
        ends = {p: end_offset(consumer, topic, p) for p in starts}
        todo = {p: o for p, o in starts.items() if o < ends[p]}
        if not todo:
            return out
        assign(consumer, [TopicPartition(topic, p, o) for p, o in todo.items()])
        positions = dict(todo)
        idle = 0
        while any(positions[p] < ends[p] for p in todo) and idle < 3:
            batch = next_batch(consumer, 500, 0.1)
            idle = 0 if batch else idle + 1
            for p, reached in batch_positions(consumer, topic, list(todo)).items():
                positions[p] = max(positions[p], reached)
            for message in batch:
                partition, offset = message.partition(), message.offset()
                if message.error() is not None or partition is None or offset is None or offset >= ends[partition]:
                    continue
                positions[partition] = offset + 1
                event = RawEvent.parse(partition, offset, message.value() or b"")
                if event is not None and accept(event):
                    out.append(event)
    finally:
        consumer.close()
    return out


def read_run(
    settings: Settings, topic: str, run_id: str, partition: int, offset: int, from_seq: int = 1
) -> list[RawEvent]:
    """A run's events with ``seq >= from_seq``, from the offset of its first event, in seq order, each once."""
    found = read(settings, topic, {partition: offset}, lambda e: e.run_id == run_id and e.seq >= from_seq)
    by_seq = {e.seq: e for e in found}
    return [by_seq[seq] for seq in sorted(by_seq)]
