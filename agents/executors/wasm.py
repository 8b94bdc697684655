"""The ``wasm`` node kind: one plugin call per attempt, in a fresh sandboxed instance.

The task's params are the node's ``plugin`` (name, name@version or sha256:<hex>), its rendered ``input``
and its ``limits``. The input goes to the plugin as JSON, and the plugin's JSON output is the node's output.
Every failure is a non-retryable :class:`PluginError` whose code names what happened.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import orjson

from agents import metrics
from agents.exceptions import PluginError
from agents.metrics import WASM_DURATION, WASM_LIMIT_HITS, WASM_LIMITS
from agents.wasm.host import PluginModule, WasmHost
from agents.wasm.limits import Limits
from schemas.plugins import PluginRef
from schemas.tasks import Task
from streams.plugins import RegisteredPlugin


class PluginSource(Protocol):
    """Where plugins are looked up: the live registry in a worker, a dict in a test or a benchmark."""

    def get(self, ref: PluginRef) -> RegisteredPlugin | None:
        """From what is known now, without waiting."""

    def resolve(self, ref: PluginRef) -> RegisteredPlugin | None:
        """Catching up with the registry first when ``get`` does not know it (may block)."""


class WasmHandler:
    """Carries out ``wasm`` tasks on ``host`` with the worker's ``defaults`` tightened by each node."""

    def __init__(self, host: WasmHost, plugins: PluginSource, defaults: Limits) -> None:
        self.host = host
        self.plugins = plugins
        self.defaults = defaults

    async def __call__(self, task: Task) -> Any:
        params = task.params
        plugin = await self._plugin(str(params.get("plugin")))
        limits = self.defaults.tighten(params.get("limits"), task.timeout)
        data = orjson.dumps(params.get("input"))
        module = PluginModule(sha256=plugin.sha256, label=plugin.label, wasm=lambda: plugin.module)
        started = time.perf_counter()
        try:
            raw = await self.host.run(module, data, limits)
        except PluginError as err:
            if metrics.ENABLED and err.code in WASM_LIMITS:
                WASM_LIMIT_HITS.labels(err.code).inc()
            raise
        finally:
            if metrics.ENABLED:
                WASM_DURATION.labels(plugin.label.split("@")[0]).observe(time.perf_counter() - started)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise PluginError(
                f"plugin {plugin.label} returned output that is not UTF-8 JSON: {err}",
                code="invalid_output",
                detail={"output": raw[:200].decode("utf-8", errors="replace")},
            ) from err

    async def _plugin(self, text: str) -> RegisteredPlugin:
        try:
            ref = PluginRef.parse(text)
        except ValueError as err:
            raise PluginError(str(err), code="unknown_plugin") from err
        # The live view has almost every plugin; only a miss waits on the broker, and not on the loop.
        found = self.plugins.get(ref) or await asyncio.to_thread(self.plugins.resolve, ref)
        if found is None:
            raise PluginError(
                f"no plugin {ref} is registered; add it with `awe plugin add FILE.wasm --name NAME`",
                code="unknown_plugin",
            )
        return found
