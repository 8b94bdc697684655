"""An in-memory view of a one-partition compacted topic: caught up on demand, or kept live in a thread.

The definitions and the plugins registries are such views; each says how a record changes it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.consuming import assign
from streams.producer import RecordProducer
from streams.retry import retry_retriable
from streams.settings import Settings

#: How long the view's consumer lets the broker hold a fetch for new records.
READER_FETCH_WAIT_MS = 50


class CompactedView:
    """Reads ``topic`` from the beginning into memory, thread-safe; subclasses fold each record in ``_apply``."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        *,
        reader_group: str,
        writer_config: dict[str, Any] | None = None,
        **reader_config: Any,
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._writer_config = writer_config or {}
        self._writer: RecordProducer | None = None
        self._reader_config = {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": reader_group,
            "enable.auto.commit": False,
            # A refresh asks for the topic's end on the same connection as the consumer's fetch, and the
            # broker answers it only after that fetch: at librdkafka's 500 ms long poll, every refresh
            # (each registration, each lookup of a workflow not seen yet) took half a second.
            "fetch.wait.max.ms": READER_FETCH_WAIT_MS,
            **reader_config,
        }
        self._position = 0
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None

    def _apply(self, value: bytes) -> None:
        """Fold one non-empty record into the view (called with the lock held)."""
        raise NotImplementedError

    def _write(self, key: str, value: bytes) -> None:
        """Write one record, wait until the broker has it, and take it into the view.

        One producer serves every write of the view: a new one would ask the broker for a producer id each
        time, which on a broker that just started waits for its coordinator to load. The record counts as
        read when the view had read everything before it; otherwise the next refresh brings the rest. Read
        back through the consumer instead, the next refresh waited up to its fetch's long poll (~0.5 s).
        """
        if self._writer is None:
            self._writer = RecordProducer(self._settings, **self._writer_config)
        self._writer.produce(self._topic, key, value)
        self._writer.flush()
        offset = self._writer.last_offset
        with self._lock:
            if offset is not None and offset == self._position:
                self._read(offset, value)

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self._reader_config)
            assign(self._consumer, [TopicPartition(self._topic, 0, OFFSET_BEGINNING)])
        return self._consumer

    def _read(self, offset: int, value: bytes | None) -> None:
        # A record the view wrote itself comes back through the consumer too: never step back.
        self._position = max(self._position, offset + 1)
        if value:
            self._apply(value)

    def follow(self) -> None:
        """Keep the view current from a background thread, so lookups never wait on the broker (workers)."""
        if self._follower is None:
            self._follower = threading.Thread(target=self._tail, name=f"follow-{self._topic}", daemon=True)
            self._follower.start()

    def _tail(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                msg = self._reader().poll(0.05)
                if msg is not None and not msg.error():
                    self._read(msg.offset() or 0, msg.value())
            time.sleep(0.001)  # hand the lock to a waiting refresh

    def close(self) -> None:
        """Stop following and release the reader's and the writer's connections."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(5)
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            # Left to the garbage collector, the writer outlived `awe dev`'s broker and logged its reconnects.
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def refresh(self, timeout: float = 10.0) -> None:
        """Read every record written since the last refresh, up to the topic's current end."""
        with self._lock:
            consumer = self._reader()
            started = time.monotonic()
            tp = TopicPartition(self._topic, 0)
            _low, high = retry_retriable(lambda: consumer.get_watermark_offsets(tp, timeout=timeout, cached=False))
            while self._position < high and time.monotonic() - started < timeout:
                msg = consumer.poll(0.5)
                if msg is not None and not msg.error():
                    self._read(msg.offset() or 0, msg.value())
