"""Workflow definitions on the compacted ``awe.definitions`` topic: register, list, resolve.

Every version is its own record (key ``tenant/name/version``), so compaction never drops a version a run
may still be using.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from schemas.definition import WorkflowDefinition
from streams.codec import decode, encode
from streams.compacted import CompactedView
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


class DefinitionRegistry(CompactedView):
    """An in-memory view of ``awe.definitions``: caught up on demand, or kept live by ``follow`` (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, Catalog(settings).name(Role.DEFINITIONS), reader_group="awe-registry-reader")
        self._by_name: dict[tuple[str, str], dict[int, RegisteredDefinition]] = {}

    def _apply(self, value: bytes) -> None:
        record = decode(value, RegisteredDefinition)
        self._by_name.setdefault((record.tenant_id, record.name), {})[record.version] = record

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
        self._write(record.key, encode(record))
        with self._lock:
            self._by_name.setdefault((tenant_id, record.name), {})[record.version] = record
        return record, True
