"""Reading a module before it is registered: WAT to WASM, the ABI check, and the manifest it declares."""

from __future__ import annotations

import wasmtime

from agents.exceptions import PluginError
from agents.wasm.abi import MEMORY, check_exports
from schemas.plugins import HostImport, PluginManifest

WASM_MAGIC = b"\0asm"
PAGE = 65536


def to_wasm(source: bytes) -> bytes:
    """The binary module: ``source`` itself when it is one, else ``source`` compiled as WAT text."""
    if source.startswith(WASM_MAGIC):
        return source
    try:
        return bytes(wasmtime.wat2wasm(source.decode("utf-8")))
    except (UnicodeDecodeError, wasmtime.WasmtimeError) as err:
        reason = _first_line(err)
        raise PluginError(f"neither a WASM binary nor valid WAT text: {reason}", code="invalid_module") from err


def compile_module(engine: wasmtime.Engine, wasm: bytes) -> wasmtime.Module:
    """Compile ``wasm``, raising ``invalid_module`` with wasmtime's reason when it is not valid WebAssembly."""
    try:
        return wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as err:
        raise PluginError(f"not a valid WebAssembly module: {_reason(err)}", code="invalid_module") from err


def inspect(engine: wasmtime.Engine, wasm: bytes) -> PluginManifest:
    """Check ``wasm`` against ABI v1 and describe what it imports and how much memory it starts with."""
    module = compile_module(engine, wasm)
    check_exports(module)
    return manifest_of(module)


def manifest_of(module: wasmtime.Module) -> PluginManifest:
    """The manifest a compiled module declares."""
    imports = [HostImport(module=i.module, name=i.name or "", kind=_kind(i.type)) for i in module.imports]
    memory = next(e.type for e in module.exports if e.name == MEMORY)
    initial = memory.limits.min * PAGE if isinstance(memory, wasmtime.MemoryType) else 0
    return PluginManifest(imports=imports, initial_memory=initial)


def _kind(extern: object) -> str:
    if isinstance(extern, wasmtime.FuncType):
        return "func"
    if isinstance(extern, wasmtime.MemoryType):
        return "memory"
    if isinstance(extern, wasmtime.TableType):
        return "table"
    if isinstance(extern, wasmtime.GlobalType):
        return "global"
    return "tag"


def _reason(err: Exception) -> str:
    # wasmtime's message is "failed to parse ...\n\nCaused by:\n    <the reason>": keep both parts, one line.
    parts = [line.strip() for line in str(err).splitlines() if line.strip() and line.strip() != "Caused by:"]
    return ": ".join(parts[:2])


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
