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
from streams.producer import RecordProducer
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
    """An in-memory view of ``awe.definitions``, caught up with the topic on demand (thread-safe)."""

    def __init__(self, settings: Settings, max_staleness: float = 0.5) -> None:
        self._settings = settings
        self._topic = Catalog(settings).name(Role.DEFINITIONS)
        self._by_name: dict[tuple[str, str], dict[int, RegisteredDefinition]] = {}
        self._position = 0
        self._refreshed_at = float("-inf")
        self._max_staleness = max_staleness
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self._settings.kafka_bootstrap,
                    "group.id": "awe-registry-reader",
                    "enable.auto.commit": False,
                }
            )
            self._consumer.assign([TopicPartition(self._topic, 0, OFFSET_BEGINNING)])
        return self._consumer

    def close(self) -> None:
        """Release the reader's connection."""
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None

    def refresh(self, timeout: float = 10.0) -> None:
        """Read every record written since the last refresh, up to the topic's current end."""
        with self._lock:
            consumer = self._reader()
            started = time.monotonic()
            _low, high = consumer.get_watermark_offsets(TopicPartition(self._topic, 0), timeout=timeout, cached=False)
            while self._position < high and time.monotonic() - started < timeout:
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                self._position = (msg.offset() or 0) + 1
                value = msg.value()
                if value:
                    record = decode(value, RegisteredDefinition)
                    self._by_name.setdefault((record.tenant_id, record.name), {})[record.version] = record
            self._refreshed_at = started

    def get(self, tenant_id: str, name: str, version: int | None = None) -> RegisteredDefinition | None:
        """A version (the newest when ``version`` is None) from what has been read so far."""
        versions = self._by_name.get((tenant_id, name))
        if not versions:
            return None
        return versions.get(version) if version is not None else versions[max(versions)]

    def resolve(self, tenant_id: str, name: str, version: int | None = None) -> RegisteredDefinition | None:
        """Like ``get``, catching up with the topic first on a miss, or for "newest" when the view is stale."""
        found = self.get(tenant_id, name, version)
        stale = time.monotonic() - self._refreshed_at > self._max_staleness
        if found is None or (version is None and stale):
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
