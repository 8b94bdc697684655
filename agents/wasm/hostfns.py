"""The host functions a plugin may import from the ``awe`` module, and the check that it asks only for allowed ones.

A plugin gets no filesystem, network, clock, randomness or environment: WASM has none of its own, and the
host gives it only the functions below that the operator allowed (``AWE_WASM_HOST_FUNCTIONS``, default
``log``). A module that imports anything else is refused with ``denied_import`` before it runs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import wasmtime

from agents.exceptions import PluginError
from schemas.plugins import HostImport

#: The import module every host function lives in.
HOST_MODULE = "awe"
MAX_LOG_BYTES = 4096
MAX_RANDOM_BYTES = 65536

log = logging.getLogger("awe.plugin")

#: The plugin being called on this thread, so a log line says whose it is.
current_plugin = threading.local()


@dataclass(frozen=True, slots=True)
class HostFunction:
    """One function of the ``awe`` import module."""

    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    implementation: Callable[..., object]
    doc: str

    def func_type(self) -> wasmtime.FuncType:
        """A new wasmtime type for this function: a linker takes ownership of the one it is given."""
        return wasmtime.FuncType([_VAL_TYPES[p]() for p in self.params], [_VAL_TYPES[r]() for r in self.results])


_VAL_TYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}


def _memory(caller: wasmtime.Caller) -> wasmtime.Memory:
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise PluginError("a host function needs the plugin's exported memory", code="invalid_module")
    return memory


def _log(caller: wasmtime.Caller, ptr: int, length: int) -> None:
    length = min(length, MAX_LOG_BYTES)
    text = bytes(_memory(caller).read(caller, ptr, ptr + length)).decode("utf-8", errors="replace")
    log.info("plugin %s: %s", getattr(current_plugin, "label", "?"), text)


def _clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _random(caller: wasmtime.Caller, ptr: int, length: int) -> None:
    _memory(caller).write(caller, os.urandom(min(length, MAX_RANDOM_BYTES)), ptr)


HOST_FUNCTIONS: dict[str, HostFunction] = {
    f.name: f
    for f in (
        HostFunction("log", ("i32", "i32"), (), _log, "log(ptr, len): a UTF-8 line to the worker log"),
        HostFunction("clock_ms", (), ("i64",), _clock_ms, "clock_ms() -> i64: Unix time in ms"),
        HostFunction("random", ("i32", "i32"), (), _random, "random(ptr, len): random bytes"),
    )
}

_NEEDS_CALLER = frozenset({"log", "random"})


def parse_allowed(setting: str) -> frozenset[str]:
    """The host functions an operator allows, from ``AWE_WASM_HOST_FUNCTIONS`` (comma-separated)."""
    names = frozenset(n.strip() for n in setting.split(",") if n.strip())
    unknown = sorted(names - HOST_FUNCTIONS.keys())
    if unknown:
        raise ValueError(
            f"AWE_WASM_HOST_FUNCTIONS names unknown host functions {unknown}; known: {', '.join(HOST_FUNCTIONS)}"
        )
    return names


def define(linker: wasmtime.Linker, allowed: Iterable[str]) -> None:
    """Give ``linker`` the allowed host functions, and nothing else."""
    for name in sorted(allowed):
        fn = HOST_FUNCTIONS[name]
        linker.define_func(HOST_MODULE, name, fn.func_type(), fn.implementation, access_caller=name in _NEEDS_CALLER)


def check_imports(imports: Iterable[HostImport], allowed: frozenset[str]) -> None:
    """Raise ``denied_import`` for an import that is not an allowed host function, naming each."""
    problems: list[str] = []
    for imp in imports:
        if imp.module != HOST_MODULE or imp.name not in HOST_FUNCTIONS or imp.kind != "func":
            problems.append(f"{imp} is not an awe host function (known: {_known()})")
        elif imp.name not in allowed:
            granted = ",".join(sorted(allowed))
            problems.append(f"{imp} is not allowed on this worker (AWE_WASM_HOST_FUNCTIONS={granted})")
    if problems:
        raise PluginError(f"the plugin imports what it may not: {'; '.join(problems)}", code="denied_import")


def _known() -> str:
    return ", ".join(f"{HOST_MODULE}.{n}" for n in HOST_FUNCTIONS)
