"""Building the projections of ``awe.events``: rebuilt from offset 0 at full consume speed, published to
compacted topics, kept current by following the topic, and read back.

The fold is :class:`schemas.projections.Projections`; this module moves records. The run index
(``awe.index.runs``: run id to the partition and offset of its first event) lets a reader seek straight to a
run instead of scanning its partition.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.projections import Projections, published
from streams.consuming import assign
from streams.partitioning import partition_for
from streams.producer import RecordProducer
from streams.retry import retry_retriable
from streams.settings import Settings
from streams.topics import Catalog, Role

Progress = Callable[[int, int], None]
"""Called now and then with (events folded, events to fold)."""


@dataclass(frozen=True)
class RebuildStats:
    """How a rebuild went."""

    events: int
    seconds: float
    digest: str

    @property
    def rate(self) -> float:
        """Events folded per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _consumer(settings: Settings) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"awe-projections-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 50,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "queued.max.messages.kbytes": 512 * 1024,
        }
    )


class ProjectionBuilder:
    """Folds ``awe.events`` into :class:`Projections` and publishes them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = Catalog(settings)
        self.events = self.catalog.name(Role.EVENTS)
        self.positions: dict[int, int] = {}

    def rebuild(self, on_progress: Progress | None = None) -> tuple[Projections, RebuildStats]:
        """Fold every event from offset 0 to the end the topic had when the rebuild began."""
        projections = Projections()
        consumer = _consumer(self.settings)
        started = time.perf_counter()
        # The fold allocates millions of small objects that live to the end: the cyclic collector would scan
        # them again and again for nothing (there are no cycles to find), at a third of the rebuild's time.
        gc.disable()
        try:
            partitions = list(range(self.settings.partitions))
            ends = {p: self._watermarks(consumer, p)[1] for p in partitions}
            total = sum(ends[p] - self._watermarks(consumer, p)[0] for p in partitions)
            assign(consumer, [TopicPartition(self.events, p, OFFSET_BEGINNING) for p in partitions])
            positions = dict.fromkeys(partitions, 0)
            idle = 0
            reported = 0
            while any(positions[p] < ends[p] for p in partitions) and idle < 5:
                batch = consumer.consume(10_000, timeout=0.2)
                idle = 0 if batch else idle + 1
                apply = projections.apply
                for message in batch:
                    partition, offset = message.partition(), message.offset()
                    if partition is None or offset is None or message.error() is not None or offset >= ends[partition]:
                        continue
                    positions[partition] = offset + 1
                    apply(partition, offset, orjson.loads(message.value() or b"{}"))
                if on_progress is not None and projections.events - reported >= 50_000:
                    reported = projections.events
                    on_progress(projections.events, total)
            if on_progress is not None:
                on_progress(projections.events, total)
            self.positions = positions
        finally:
            gc.enable()
            consumer.close()
        seconds = time.perf_counter() - started
        return projections, RebuildStats(events=projections.events, seconds=seconds, digest=projections.digest())

    def publish(self, projections: Projections, *, everything: bool = True) -> int:
        """Write the projections (every key, or only those changed since the last publish); return how many."""
        changed = projections.take_changes()
        runs = projections.runs.keys() if everything else changed["runs"]
        index = projections.index.keys() if everything else changed["index"]
        usage = projections.usage.keys() if everything else changed["usage"]
        batching: dict[str, Any] = {"linger.ms": 20, "compression.type": "lz4"}
        producer = RecordProducer(self.settings, **batching)
        for run_id in runs:
            partition = partition_for(run_id, self.settings.partitions)
            producer.produce(
                self.catalog.name(Role.RUNS), run_id, orjson.dumps(published(projections.runs[run_id])), partition
            )
        for run_id in index:
            partition = partition_for(run_id, self.settings.partitions)
            producer.produce(
                self.catalog.name(Role.RUN_INDEX), run_id, orjson.dumps(projections.index[run_id]), partition
            )
        for key in usage:
            producer.produce(self.catalog.name(Role.USAGE), key, orjson.dumps(published(projections.usage[key])), 0)
        producer.flush(60)
        return len(runs) + len(index) + len(usage)

    def follow(self, projections: Projections, stop: threading.Event, *, publish_every_s: float = 1.0) -> None:
        """Keep folding new events from where the rebuild stopped, publishing what changed every so often."""
        consumer = _consumer(self.settings)
        try:
            assign(consumer, [TopicPartition(self.events, p, o) for p, o in self.positions.items()])
            last = time.monotonic()
            while not stop.is_set():
                for message in consumer.consume(10_000, timeout=0.2):
                    partition, offset = message.partition(), message.offset()
                    if partition is None or offset is None or message.error() is not None:
                        continue
                    self.positions[partition] = offset + 1
                    projections.apply(partition, offset, orjson.loads(message.value() or b"{}"))
                if time.monotonic() - last >= publish_every_s:
                    self.publish(projections, everything=False)
                    last = time.monotonic()
            self.publish(projections, everything=False)
        finally:
            consumer.close()

    def _watermarks(self, consumer: Consumer, partition: int) -> tuple[int, int]:
        tp = TopicPartition(self.events, partition)
        low, high = retry_retriable(lambda: consumer.get_watermark_offsets(tp, timeout=10))
        return int(low), int(high)


def read_projection(settings: Settings, role: Role, *, partition: int | None = None) -> dict[str, Any]:
    """The newest value of every key of a published projection (or of one of its partitions)."""
    topic = Catalog(settings).name(role)
    consumer = _consumer(settings)
    found: dict[str, Any] = {}
    try:
        count = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        chosen = [partition] if partition is not None else list(range(count))
        ends = {p: _end(consumer, TopicPartition(topic, p)) for p in chosen}
        assign(consumer, [TopicPartition(topic, p, OFFSET_BEGINNING) for p in chosen])
        positions = dict.fromkeys(chosen, 0)
        idle = 0
        while any(positions[p] < ends[p] for p in chosen) and idle < 5:
            batch = consumer.consume(10_000, timeout=0.2)
            idle = 0 if batch else idle + 1
            for message in batch:
                at, offset, key = message.partition(), message.offset(), message.key()
                if at is None or offset is None or key is None or message.error() is not None:
                    continue
                positions[at] = offset + 1
                value = message.value()
                if value is None:
                    found.pop(key.decode(), None)
                else:
                    found[key.decode()] = orjson.loads(value)
    finally:
        consumer.close()
    return found


def _end(consumer: Consumer, tp: TopicPartition) -> int:
    return int(retry_retriable(lambda: consumer.get_watermark_offsets(tp, timeout=10))[1])


def lookup_run(settings: Settings, run_id: str) -> tuple[int, int] | None:
    """Where a run's first event is, from the run index: (partition, offset), or None if not indexed."""
    entry = read_projection(settings, Role.RUN_INDEX, partition=partition_for(run_id, settings.partitions)).get(run_id)
    return (int(entry[0]), int(entry[1])) if entry else None
