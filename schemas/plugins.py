"""WASM plugins in the wire contract: how a node names a plugin, and the manifest stored beside a module.

A plugin is a WebAssembly module stored by its content hash on ``awe.plugins``; names and versions are
tags on that hash. Pure: no I/O, no wasmtime (the inspection that builds a manifest lives in ``agents``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ABI_VERSION",
    "PLUGIN_NAME_PATTERN",
    "PLUGIN_REF_PATTERN",
    "HostImport",
    "PluginManifest",
    "PluginRef",
]

#: The plugin ABI this version of awe speaks (``docs/plugins.md``).
ABI_VERSION = 1

PLUGIN_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
_VERSION = r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}"
#: ``name``, ``name@version`` or ``sha256:<64 hex digits>``.
PLUGIN_REF_PATTERN = rf"^(sha256:[0-9a-f]{{64}}|[a-z0-9][a-z0-9_.-]{{0,99}}(@{_VERSION})?)$"
_REF = re.compile(PLUGIN_REF_PATTERN)


@dataclass(frozen=True, slots=True)
class PluginRef:
    """A parsed plugin reference: by content hash, or by name and (optionally) version."""

    sha256: str | None = None
    name: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> PluginRef:
        """Parse ``name``, ``name@version`` or ``sha256:<hex>``; ValueError on anything else."""
        if not _REF.match(text):
            raise ValueError(f"invalid plugin reference {text!r}: use name, name@version or sha256:<64 hex digits>")
        if text.startswith("sha256:"):
            return cls(sha256=text.removeprefix("sha256:"))
        name, _, version = text.partition("@")
        return cls(name=name, version=version or None)

    def __str__(self) -> str:
        if self.sha256 is not None:
            return f"sha256:{self.sha256}"
        return f"{self.name}@{self.version}" if self.version else str(self.name)


class HostImport(BaseModel):
    """One function a module imports: the host functions it asks for (``awe.log``), or ones awe lacks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    module: str
    name: str
    kind: Literal["func", "memory", "table", "global", "tag"] = "func"

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


class PluginManifest(BaseModel):
    """What a module declares, read from the module itself when it is registered.

    ``imports`` is the module's request for host functions; a worker grants it only when every import is
    a host function its operator allows (``AWE_WASM_HOST_FUNCTIONS``), else the node fails ``denied_import``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    abi: int = ABI_VERSION
    imports: list[HostImport] = Field(default_factory=list)
    #: The initial size of the module's memory, in bytes (a worker refuses one above its memory limit).
    initial_memory: int = Field(default=0, ge=0)
