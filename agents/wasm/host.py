"""The WASM host: runs one plugin call in a fresh, limited instance.

Every call gets a new store and instance, so no state survives from one call (or one run, or one tenant)
to the next; the compiled module is shared through the compile cache. Limits: fuel, memory (the store's
limiter), a deadline (epoch interruption), output size, and at most ``max_instances`` calls at once.

Where a call runs: a small plugin call takes ~0.2 ms, and handing it to a thread and back costs more than
that (two thread wake-ups and two GIL hand-offs). So a call first runs on the caller's thread (the worker's
loop) with its fuel capped at ``inline_fuel`` instructions, which bounds how long it can hold the loop. A
plugin that runs out of that budget is run again, with its full limits, on the host's thread pool, and its
later calls go straight there. Re-running is safe because a plugin is a function of its input: it has no
state between calls and no effects beyond the host functions it was allowed (a ``log`` line may repeat).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import wasmtime

from agents.exceptions import PluginError
from agents.wasm import abi
from agents.wasm.cache import CompileCache
from agents.wasm.epoch import EpochTicker
from agents.wasm.hostfns import check_imports, current_plugin, define
from agents.wasm.limits import Limits, describe_bytes
from agents.wasm.manifest import manifest_of

log = logging.getLogger("awe.wasm")

#: The wasm stack a call may use; deep recursion beyond it traps with the ``stack`` code.
MAX_WASM_STACK = 1 << 20


@dataclass(frozen=True, slots=True)
class PluginModule:
    """What the host needs of a registered plugin: its hash, a name for messages, and its bytes."""

    sha256: str
    label: str
    wasm: Callable[[], bytes]


@dataclass(slots=True)
class CallStats:
    """Where calls ran: on the caller's thread within the inline budget, or on the pool."""

    inline: int = 0
    pooled: int = 0


def default_cache_dir() -> Path:
    """Where compiled plugins go when ``AWE_WASM_CACHE_DIR`` is not set: a temp directory per user."""
    return Path(tempfile.gettempdir()) / f"awe-wasm-{os.getuid()}"


def make_engine() -> wasmtime.Engine:
    """The one engine configuration awe runs plugins with (serialized modules are tied to it)."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.max_wasm_stack = MAX_WASM_STACK
    # Plugins are small and compiled once per worker: favour the speed of the code over compile time.
    config.cranelift_opt_level = "speed"
    return wasmtime.Engine(config)


class WasmHost:
    """Runs plugin calls under limits; ``call`` blocks, ``run`` awaits it (inline first, see the module)."""

    def __init__(
        self,
        *,
        allowed: frozenset[str],
        max_instances: int,
        cache_dir: Path | None = None,
        tick_s: float = 0.01,
        inline_fuel: int = 0,
    ) -> None:
        self.engine = make_engine()
        self.allowed = allowed
        self._linker = wasmtime.Linker(self.engine)
        define(self._linker, allowed)
        self.cache: CompileCache[wasmtime.InstancePre] = CompileCache(
            self.engine, cache_dir or default_cache_dir(), self._prepare
        )
        self._ticker = EpochTicker(self.engine, tick_s)
        self._pool = ThreadPoolExecutor(max_instances, thread_name_prefix="awe-wasm")
        # Inline calls and pooled calls share one count, so at most ``max_instances`` instances exist at once.
        self._slots = threading.BoundedSemaphore(max_instances)
        self.inline_fuel = inline_fuel
        #: Plugins that ran out of the inline budget once; they run on the pool from then on.
        self.heavy: set[str] = set()
        self.stats = CallStats()

    def _prepare(self, module: wasmtime.Module) -> wasmtime.InstancePre:
        abi.check_exports(module)
        check_imports(manifest_of(module).imports, self.allowed)
        try:
            return self._linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as err:  # an allowed name imported with another signature
            raise PluginError(f"the plugin's imports do not link: {err}", code="denied_import") from err

    async def run(self, plugin: PluginModule, data: bytes, limits: Limits) -> bytes:
        """``call``, inline within the inline fuel budget, else on the host's thread pool."""
        if self.inline_fuel and plugin.sha256 not in self.heavy and self._slots.acquire(blocking=False):
            capped = limits.fuel > self.inline_fuel
            self.stats.inline += 1
            try:
                return self.call(plugin, data, replace(limits, fuel=self.inline_fuel) if capped else limits)
            except PluginError as err:
                if not (capped and err.code == "fuel"):
                    raise
                self.heavy.add(plugin.sha256)
            finally:
                self._slots.release()
        self.stats.pooled += 1
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._pooled, plugin, data, limits)

    def _pooled(self, plugin: PluginModule, data: bytes, limits: Limits) -> bytes:
        with self._slots:
            return self.call(plugin, data, limits)

    def call(self, plugin: PluginModule, data: bytes, limits: Limits) -> bytes:
        """Run ``plugin`` on the JSON ``data`` under ``limits`` and return its output bytes (blocking)."""
        if not self._ticker.running:
            self._ticker.start()
        pre = self.cache.get(plugin.sha256, plugin.wasm)
        store = wasmtime.Store(self.engine)
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(self._ticker.ticks(limits.deadline_s))
        store.set_limits(memory_size=limits.memory_bytes)
        current_plugin.label = plugin.label
        memory: wasmtime.Memory | None = None
        try:
            instance = pre.instantiate(store)
            exports = instance.exports(store)
            memory = _memory(exports)
            ptr = _i32(_func(exports, abi.ALLOC)(store, len(data)), "alloc")
            if ptr < 0 or ptr + len(data) > memory.data_len(store):
                raise PluginError(
                    f"alloc({len(data)}) returned {ptr}, but {len(data)} bytes there are outside the plugin's memory",
                    code="abi_violation",
                )
            memory.write(store, data, ptr)
            result = _func(exports, abi.RUN)(store, ptr, len(data))
        except wasmtime.Trap as trap:
            raise _trap_error(trap, store, memory, limits) from trap
        except wasmtime.WasmtimeError as err:
            raise _start_error(err, limits) from err
        finally:
            current_plugin.label = None
        out_ptr, out_len = abi.unpack(_i32(result, "run"))
        if out_len > limits.output_bytes:
            raise PluginError(
                f"the plugin's output of {out_len} bytes is over the output size limit of "
                f"{describe_bytes(limits.output_bytes)}",
                code="output_size",
                detail={"limit": "output_size", "output_bytes": out_len, "limit_bytes": limits.output_bytes},
            )
        if out_ptr + out_len > memory.data_len(store):
            raise PluginError(
                f"run returned output at {out_ptr} of {out_len} bytes, outside the plugin's memory",
                code="invalid_output",
            )
        return bytes(memory.read(store, out_ptr, out_ptr + out_len))

    def close(self) -> None:
        """Stop the ticker and the threads (waiting for calls in flight, which their deadline bounds)."""
        self._pool.shutdown(wait=True)
        self._ticker.stop()


# The export checks ran before linking (abi.check_exports), so these only narrow the types.
def _memory(exports: Mapping[str, object]) -> wasmtime.Memory:
    memory = exports[abi.MEMORY]
    assert isinstance(memory, wasmtime.Memory)
    return memory


def _func(exports: Mapping[str, object], name: str) -> wasmtime.Func:
    func = exports[name]
    assert isinstance(func, wasmtime.Func)
    return func


def _i32(value: object, name: str) -> int:
    if not isinstance(value, int):
        raise PluginError(f"{name} did not return an integer", code="invalid_module")
    return value


def _trap_error(
    trap: wasmtime.Trap, store: wasmtime.Store, memory: wasmtime.Memory | None, limits: Limits
) -> PluginError:
    code = trap.trap_code
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return PluginError(
            f"the plugin ran out of fuel: it used its budget of {limits.fuel:,} instructions (limit fuel)",
            code="fuel",
            detail={"limit": "fuel", "fuel": limits.fuel},
        )
    if code == wasmtime.TrapCode.INTERRUPT:
        return PluginError(
            f"the plugin ran past its deadline of {limits.deadline_s:g}s (limit deadline)",
            code="deadline",
            detail={"limit": "deadline", "deadline_s": limits.deadline_s},
        )
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return PluginError(
            f"the plugin overflowed its stack of {describe_bytes(MAX_WASM_STACK)} (deep recursion)",
            code="stack",
            detail={"limit": "stack", "stack_bytes": MAX_WASM_STACK},
        )
    used = memory.data_len(store) if memory is not None else 0
    summary = trap.message.strip().splitlines()[0] if trap.message.strip() else "trap"
    if used > limits.memory_bytes // 2:
        # The store's limiter answers a memory.grow past the limit with -1, and wasmtime's Python API does
        # not say that it did. A plugin that traps holding more than half its limit is taken to have been
        # refused memory: a grow of the most it could still get (a fixed step, or doubling) was denied.
        return PluginError(
            f"the plugin trapped ({summary}) after reaching its memory limit of "
            f"{describe_bytes(limits.memory_bytes)} (limit memory)",
            code="memory",
            detail={"limit": "memory", "memory_bytes": used, "limit_bytes": limits.memory_bytes},
        )
    name = code.name.lower() if code is not None else "trap"
    return PluginError(
        f"the plugin trapped: {name}: {summary} ({describe_bytes(used)} of its {describe_bytes(limits.memory_bytes)} "
        "memory in use)",
        code="trap",
        detail={"trap": name, "memory_bytes": used},
    )


def _start_error(err: wasmtime.WasmtimeError, limits: Limits) -> PluginError:
    text = str(err)
    if "exceeds memory limits" in text or "memory minimum size" in text:
        return PluginError(
            f"the plugin's initial memory is over its memory limit of {describe_bytes(limits.memory_bytes)} "
            "(limit memory)",
            code="memory",
            detail={"limit": "memory", "limit_bytes": limits.memory_bytes},
        )
    return PluginError(f"the plugin could not be run: {text.strip().splitlines()[0]}", code="trap")
