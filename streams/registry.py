"""Workflow definitions on the compacted ``awe.definitions`` topic: register, list, resolve.

Every version is its own record (key ``tenant/name/version``), so compaction never drops a version a run
may still be using.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pydantic import BaseModel, ConfigDict

from schemas.definition import WorkflowDefinition
from streams.codec import decode, encode
from streams.consuming import assign
from streams.producer import RecordProducer
from streams.retry import retry_retriable
from streams.settings import Settings
from streams.topics import Catalog, Role


class RegisteredDefinition(BaseModel):
    """One version of a workflow as stored on ``awe.definitions``."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    name: str
    version: int
    digest: str
    definition: WorkflowDefinition
    registered_at: datetime

    @property
    def key(self) -> str:
        """The record key: tenant, name and version."""
        return f"{self.tenant_id}/{self.name}/{self.version}"


class DefinitionRegistry:
    """An in-memory view of ``awe.definitions``: caught up on demand, or kept live by ``follow`` (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = Catalog(settings).name(Role.DEFINITIONS)
        self._by_name: dict[tuple[str, str], dict[int, RegisteredDefinition]] = {}
        self._position = 0
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self._settings.kafka_bootstrap,
                    "group.id": "awe-registry-reader",
                    "enable.auto.commit": False,
                }
            )
            assign(self._consumer, [TopicPartition(self._topic, 0, OFFSET_BEGINNING)])
        return self._consumer

    def follow(self) -> None:
        """Keep the view current from a background thread, so lookups never wait on the broker (workers)."""
        if self._follower is None:
            self._follower = threading.Thread(target=self._tail, name="awe-definitions", daemon=True)
            self._follower.start()

    def _tail(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                msg = self._reader().poll(0.05)
                if msg is not None and not msg.error():
                    self._apply(msg.offset() or 0, msg.value())
            time.sleep(0.001)  # hand the lock to a waiting refresh

    def _apply(self, offset: int, value: bytes | None) -> None:
        self._position = offset + 1
        if value:
            record = decode(value, RegisteredDefinition)
            self._by_name.setdefault((record.tenant_id, record.name), {})[record.version] = record

    def close(self) -> None:
        """Stop following and release the reader's connection."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(5)
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None

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
                    self._apply(msg.offset() or 0, msg.value())

    def get(self, tenant_id: str, name: str, version: int | None = None) -> RegisteredDefinition | None:
        """A version (the newest when ``version`` is None) from what has been read so far."""
        versions = self._by_name.get((tenant_id, name))
        if not versions:
            return None
        return versions.get(version) if version is not None else versions[max(versions)]

    def resolve(self, tenant_id: str, name: str, version: int | None = None) -> RegisteredDefinition | None:
        """Like ``get``, catching up with the topic first when the view does not have it yet."""
        found = self.get(tenant_id, name, version)
        if found is None:
            self.refresh()
            found = self.get(tenant_id, name, version)
        return found

    def list(self, tenant_id: str) -> list[RegisteredDefinition]:
        """The newest version of every workflow of a tenant, by name."""
        self.refresh()
        return sorted(
            (versions[max(versions)] for (t, _), versions in self._by_name.items() if t == tenant_id),
            key=lambda r: r.name,
        )

    def register(self, tenant_id: str, definition: WorkflowDefinition) -> tuple[RegisteredDefinition, bool]:
        """Store a new version when the content changed; return it and whether it is new."""
        self.refresh()
        digest = definition.digest()
        latest = self.get(tenant_id, definition.name)
        if latest is not None and latest.digest == digest:
            return latest, False
        record = RegisteredDefinition(
            tenant_id=tenant_id,
            name=definition.name,
            version=(latest.version + 1) if latest else 1,
            digest=digest,
            definition=definition,
            registered_at=datetime.now(UTC),
        )
        producer = RecordProducer(self._settings)
        producer.produce(self._topic, record.key, encode(record))
        producer.flush()
        with self._lock:
            self._by_name.setdefault((tenant_id, record.name), {})[record.version] = record
        return record, True
