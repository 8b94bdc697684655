"""The per-worker compile cache: a hot plugin is compiled once, not on every call.

Two levels: compiled modules in memory (least recently used ones dropped past ``capacity``), and wasmtime's
serialized modules on disk, so a restarted worker deserializes instead of compiling again. Deserializing
trusts the file completely, so the directory is private to the worker's user, each file is named by the
module's SHA-256 (checked against the bytes before compiling), and a file wasmtime refuses (another
wasmtime version or configuration) is compiled again and replaced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import wasmtime

from agents.exceptions import PluginError
from agents.wasm.manifest import compile_module

log = logging.getLogger("awe.wasm")

T = TypeVar("T")


@dataclass(slots=True)
class CacheStats:
    """Where modules came from: memory hits, disk hits (deserialized) and compilations."""

    memory_hits: int = 0
    disk_hits: int = 0
    compiles: int = 0


class CompileCache(Generic[T]):
    """Compiled modules by SHA-256, in memory and on disk (thread-safe).

    ``prepare`` turns a compiled module into what callers keep in memory (the host links it once); when it
    raises, nothing is kept for that module.
    """

    def __init__(
        self, engine: wasmtime.Engine, directory: Path, prepare: Callable[[wasmtime.Module], T], capacity: int = 64
    ) -> None:
        self._engine = engine
        self._prepare = prepare
        self._dir = directory
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._capacity = capacity
        self._entries: OrderedDict[str, T] = OrderedDict()
        # One lock for the whole cache: a miss compiles under it, which is rare and keeps two threads from
        # compiling the same module at once.
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def get(self, sha256: str, wasm: Callable[[], bytes]) -> T:
        """The prepared module for ``sha256``; ``wasm`` gives its bytes when it must be compiled."""
        with self._lock:
            entry = self._entries.get(sha256)
            if entry is not None:
                self._entries.move_to_end(sha256)
                self.stats.memory_hits += 1
                return entry
            entry = self._prepare(self._from_disk(sha256) or self._compile(sha256, wasm()))
            self._entries[sha256] = entry
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
            return entry

    def _path(self, sha256: str) -> Path:
        return self._dir / f"{sha256}.cwasm"

    def _from_disk(self, sha256: str) -> wasmtime.Module | None:
        path = self._path(sha256)
        if not path.exists():
            return None
        try:
            module = wasmtime.Module.deserialize_file(self._engine, str(path))
        except wasmtime.WasmtimeError as err:
            log.info("recompiling plugin %s: its cached compilation is unusable (%s)", sha256[:12], err)
            return None
        self.stats.disk_hits += 1
        return module

    def _compile(self, sha256: str, wasm: bytes) -> wasmtime.Module:
        if hashlib.sha256(wasm).hexdigest() != sha256:
            raise PluginError(f"plugin module does not match its hash sha256:{sha256}", code="invalid_module")
        started = time.perf_counter()
        module = compile_module(self._engine, wasm)
        self.stats.compiles += 1
        log.info("compiled plugin %s in %.1f ms", sha256[:12], (time.perf_counter() - started) * 1000)
        # Written under a temporary name and renamed, so another worker never reads half a file.
        tmp = self._path(sha256).with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(module.serialize())
        tmp.replace(self._path(sha256))
        return module
