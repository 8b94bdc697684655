"""The plugin ABI, version 1 (``docs/plugins.md``): JSON in and JSON out over the module's linear memory.

A module exports ``memory``, ``alloc(len: i32) -> i32`` and ``run(ptr: i32, len: i32) -> i64``. The host
writes the UTF-8 JSON input at ``alloc(len)``, calls ``run``, and reads the UTF-8 JSON output at the address
in the high 32 bits of the result, of the length in the low 32 bits.
"""

from __future__ import annotations

import wasmtime

from agents.exceptions import PluginError

MEMORY, ALLOC, RUN = "memory", "alloc", "run"

_SIGNATURES: dict[str, tuple[list[str], list[str]]] = {
    ALLOC: (["i32"], ["i32"]),
    RUN: (["i32", "i32"], ["i64"]),
}


def pack(ptr: int, length: int) -> int:
    """The i64 ``run`` returns for output at ``ptr`` of ``length`` bytes (as an unsigned 64-bit value)."""
    return ((ptr & 0xFFFFFFFF) << 32) | (length & 0xFFFFFFFF)


def unpack(result: int) -> tuple[int, int]:
    """``(ptr, length)`` from the i64 ``run`` returned; wasmtime hands it over signed."""
    result &= 0xFFFFFFFFFFFFFFFF
    return result >> 32, result & 0xFFFFFFFF


def check_exports(module: wasmtime.Module) -> None:
    """Raise ``invalid_module`` unless the module exports what ABI v1 needs, with the right types."""
    exports = {e.name: e.type for e in module.exports}
    problems: list[str] = []
    if not isinstance(exports.get(MEMORY), wasmtime.MemoryType):
        problems.append(f"export a memory named {MEMORY!r}")
    for name, (params, results) in _SIGNATURES.items():
        found = exports.get(name)
        if not isinstance(found, wasmtime.FuncType):
            problems.append(f"export a function {name}{_signature(params, results)}")
        else:
            has = ([str(p) for p in found.params], [str(r) for r in found.results])
            if has != (params, results):
                problems.append(f"give {name} the type {_signature(params, results)}, not {_signature(*has)}")
    if problems:
        raise PluginError(f"not an awe plugin (ABI v1): it must {'; '.join(problems)}", code="invalid_module")


def _signature(params: list[str], results: list[str]) -> str:
    returns = f" -> {', '.join(results)}" if results else ""
    return f"({', '.join(params)}){returns}"
