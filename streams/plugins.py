"""WASM plugins on the compacted ``awe.plugins`` topic: add, list, resolve; followed live by every worker.

A record is keyed by the module's SHA-256 and carries the module, its manifest and every ``name@version``
tag that points at it, so compaction (which keeps the newest record per key) never loses a tag. A name's
newest version is the one tagged last. Plugins are shared by all tenants: an operator installs them, as
they would a binary on a host; a name can carry a prefix (``acme.redact``) to keep tenants apart.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.plugins import PLUGIN_NAME_PATTERN, PluginManifest, PluginRef
from streams.codec import decode, encode
from streams.compacted import CompactedView
from streams.exceptions import PluginConflictError
from streams.settings import Settings
from streams.topics import Catalog, Role

#: The largest module accepted; the topic's ``max.message.bytes`` leaves room for its base64 encoding.
MAX_MODULE_BYTES = 8 << 20
_RECORD_BYTES = 16 << 20


class PluginTag(BaseModel):
    """One ``name@version`` given to a module."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=PLUGIN_NAME_PATTERN)
    version: str
    registered_at: datetime

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class RegisteredPlugin(BaseModel):
    """A module as stored on ``awe.plugins``: its bytes (base64 in the JSON), its manifest and its tags."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    sha256: str
    module: bytes
    manifest: PluginManifest
    tags: list[PluginTag]

    @property
    def label(self) -> str:
        """A name for messages: the newest tag and the start of the hash."""
        newest = max(self.tags, key=lambda t: t.registered_at)
        return f"{newest} (sha256:{self.sha256[:12]})"


class PluginRegistry(CompactedView):
    """An in-memory view of ``awe.plugins``: caught up on demand, or kept live by ``follow`` (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings,
            Catalog(settings).name(Role.PLUGINS),
            reader_group="awe-plugins-reader",
            writer_config={"message.max.bytes": _RECORD_BYTES},
            **{"fetch.message.max.bytes": _RECORD_BYTES},
        )
        self._by_sha: dict[str, RegisteredPlugin] = {}

    def _apply(self, value: bytes) -> None:
        record = decode(value, RegisteredPlugin)
        self._by_sha[record.sha256] = record

    def get(self, ref: PluginRef) -> RegisteredPlugin | None:
        """The plugin ``ref`` names, from what has been read so far (a name alone: its newest version)."""
        if ref.sha256 is not None:
            return self._by_sha.get(ref.sha256)
        tagged = [(tag, p) for p in list(self._by_sha.values()) for tag in p.tags if tag.name == ref.name]
        if ref.version is not None:
            tagged = [(tag, p) for tag, p in tagged if tag.version == ref.version]
        if not tagged:
            return None
        return max(tagged, key=lambda tp: tp[0].registered_at)[1]

    def resolve(self, ref: PluginRef) -> RegisteredPlugin | None:
        """Like ``get``, catching up with the topic first when the view does not have it yet."""
        found = self.get(ref)
        if found is None:
            self.refresh()
            found = self.get(ref)
        return found

    def list(self) -> list[tuple[PluginTag, RegisteredPlugin]]:
        """Every tag and the plugin it names, by name then registration."""
        self.refresh()
        tagged = [(tag, p) for p in self._by_sha.values() for tag in p.tags]
        return sorted(tagged, key=lambda tp: (tp[0].name, tp[0].registered_at))

    def add(
        self, wasm: bytes, manifest: PluginManifest, name: str, version: str | None = None
    ) -> tuple[RegisteredPlugin, PluginTag, bool]:
        """Tag ``wasm`` as ``name@version`` (the next whole number when no version is given) and store it.

        Returns the record, the tag and whether anything changed: the same module under its newest tag, or
        under the version asked for, is left alone. A version that already names another module raises
        :class:`PluginConflictError`.
        """
        if len(wasm) > MAX_MODULE_BYTES:
            raise PluginConflictError(
                f"the module is {len(wasm)} bytes; plugins are limited to {MAX_MODULE_BYTES} bytes", code="too_large"
            )
        self.refresh()
        sha = hashlib.sha256(wasm).hexdigest()
        same_name = [tag for p in self._by_sha.values() for tag in p.tags if tag.name == name]
        if version is not None:
            taken = self.get(PluginRef(name=name, version=version))
            if taken is not None:
                if taken.sha256 != sha:
                    raise PluginConflictError(
                        f"{name}@{version} already names sha256:{taken.sha256}; give the new module another version"
                    )
                tag = next(t for t in taken.tags if t.name == name and t.version == version)
                return taken, tag, False
        else:
            newest = self.get(PluginRef(name=name))
            if newest is not None and newest.sha256 == sha:
                tag = max((t for t in newest.tags if t.name == name), key=lambda t: t.registered_at)
                return newest, tag, False
            numbers = [int(t.version) for t in same_name if t.version.isdigit()]
            version = str(max(numbers, default=0) + 1)
        tag = PluginTag(name=name, version=version, registered_at=datetime.now(UTC))
        existing = self._by_sha.get(sha)
        tags = [*(existing.tags if existing else []), tag]
        record = RegisteredPlugin(sha256=sha, module=wasm, manifest=manifest, tags=tags)
        self._write(sha, encode(record))
        with self._lock:
            self._by_sha[sha] = record
        return record, tag, True
