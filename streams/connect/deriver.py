"""The sink derivation: follows ``awe.events`` and writes ``awe.sink.events`` (one sink-ready record per
event) and ``awe.sink.runs`` (the run summary after every change), on the partition the run lives on.

At-least-once on purpose: derived records are flushed before the consumer offsets are committed, so a crash
in between derives some events again, and the sinks dedupe them by key (upsert on run id and seq). The run
summaries are a fold, so every start folds ``awe.events`` from offset 0 again, writing only what lies past
the committed offsets. Run it as ``python -m streams.connect.deriver`` (``awe connect up`` does); it never
writes ``awe.events``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.projections import Projections, published
from streams.connect.records import sink_event, sink_run
from streams.consuming import assign
from streams.producer import RecordProducer
from streams.settings import Settings, get_settings
from streams.topics import Catalog, Role

log = logging.getLogger(__name__)


class SinkDeriver:
    """Derives the sink topics from ``awe.events``; :meth:`run` until a stop event is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        catalog = Catalog(settings)
        self.events_topic = catalog.name(Role.EVENTS)
        self.sink_events_topic = catalog.name(Role.SINK_EVENTS)
        self.sink_runs_topic = catalog.name(Role.SINK_RUNS)
        self.group = f"{settings.topic_prefix}sink-deriver"

    def run(self, stop: threading.Event) -> None:
        """Derive until ``stop`` is set; commits what it derived before returning."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": self.group,
                "enable.auto.commit": False,
                # Only what the orchestrator committed: an aborted transaction's events never reach a sink.
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,
            }
        )
        batching: dict[str, Any] = {"linger.ms": 5, "compression.type": "lz4"}
        producer = RecordProducer(self.settings, **batching)
        projections = Projections()
        try:
            partitions = list(range(self.settings.partitions))
            committed = consumer.committed([TopicPartition(self.events_topic, p) for p in partitions], timeout=30)
            # Everything before these offsets was derived by an earlier run: fold it, write nothing for it.
            resume = {tp.partition: max(tp.offset, 0) for tp in committed}
            positions = dict(resume)
            assign(consumer, [TopicPartition(self.events_topic, p, OFFSET_BEGINNING) for p in partitions])
            while not stop.is_set():
                batch = consumer.consume(10_000, timeout=0.2)
                live = False
                for message in batch:
                    partition, offset, value = message.partition(), message.offset(), message.value()
                    if partition is None or offset is None or value is None or message.error() is not None:
                        continue
                    event = orjson.loads(value)
                    projections.apply(partition, offset, event)
                    if offset < resume[partition]:
                        projections.changed["runs"].discard(event["run_id"])
                        continue
                    key, record = sink_event(event)
                    producer.produce(self.sink_events_topic, key, record, partition)
                    positions[partition] = offset + 1
                    live = True
                if live:
                    self._publish_runs(projections, producer)
                    producer.flush(60)
                    consumer.commit(
                        offsets=[TopicPartition(self.events_topic, p, o) for p, o in positions.items() if o > 0],
                        asynchronous=False,
                    )
        finally:
            producer.flush(60)
            consumer.close()

    def _publish_runs(self, projections: Projections, producer: RecordProducer) -> None:
        for run_id in projections.take_changes()["runs"]:
            start = projections.index[run_id]
            key, record = sink_run(published(projections.runs[run_id]))
            # On the run's own partition: the sink sees a run's summaries in the order they were folded.
            producer.produce(self.sink_runs_topic, key, record, start[0])


def main() -> None:
    """Run the deriver in the foreground until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    settings = get_settings()
    deriver = SinkDeriver(settings)
    log.info("deriving %s from %s on %s", deriver.sink_events_topic, deriver.events_topic, settings.kafka_bootstrap)
    started = time.monotonic()
    deriver.run(stop)
    log.info("stopped after %.0fs", time.monotonic() - started)


if __name__ == "__main__":
    main()
