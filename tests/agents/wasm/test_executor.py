"""The wasm executor's handler on its own: plugin lookup, input and output as JSON, node limits, errors."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from agents.exceptions import PluginError
from agents.executors.wasm import WasmHandler
from agents.wasm.host import WasmHost
from agents.wasm.limits import Limits
from agents.wasm.manifest import to_wasm
from schemas.plugins import PluginManifest, PluginRef
from schemas.tasks import Task
from streams.plugins import PluginTag, RegisteredPlugin
from tests.agents.wasm.plugins import ECHO, HOSTILE

DEFAULTS = Limits(fuel=1_000_000_000, memory_bytes=64 << 20, deadline_s=5.0, output_bytes=1 << 20)


class Plugins:
    """A registry of a few plugins, in memory."""

    def __init__(self, **sources: str) -> None:
        self.by_name: dict[str, RegisteredPlugin] = {}
        for name, source in sources.items():
            wasm = to_wasm(source.encode())
            tag = PluginTag(name=name, version="1", registered_at=datetime.now(UTC))
            self.by_name[name] = RegisteredPlugin(
                sha256=hashlib.sha256(wasm).hexdigest(), module=wasm, manifest=PluginManifest(), tags=[tag]
            )

    def get(self, ref: PluginRef) -> RegisteredPlugin | None:
        return next(
            (p for p in self.by_name.values() if ref.sha256 in (None, p.sha256) and ref.name in (None, p.tags[0].name)),
            None,
        )

    def resolve(self, ref: PluginRef) -> RegisteredPlugin | None:
        return self.get(ref)


def _task(plugin: str, input: Any, timeout: float | None = None, **limits: Any) -> Task:
    return Task(
        task_id="r:n:1",
        run_id="r",
        tenant_id="acme",
        node_id="n",
        kind="wasm",
        attempt=1,
        params={"plugin": plugin, "input": input, "limits": limits},
        timeout=timeout,
    )


@pytest.fixture
def handler(host: WasmHost) -> WasmHandler:
    return WasmHandler(
        host, Plugins(echo=ECHO, loop=HOSTILE["infinite_loop"][0], junk=HOSTILE["not_json"][0]), DEFAULTS
    )


@pytest.mark.asyncio
async def test_the_output_is_the_plugins_json(handler: WasmHandler) -> None:
    assert await handler(_task("echo", {"a": [1, "two", None]})) == {"a": [1, "two", None]}
    sha = handler.plugins.get(PluginRef(name="echo"))
    assert sha is not None
    assert await handler(_task(f"sha256:{sha.sha256}", "by hash")) == "by hash"


@pytest.mark.asyncio
async def test_an_unknown_plugin_fails_without_retry(handler: WasmHandler) -> None:
    with pytest.raises(PluginError) as caught:
        await handler(_task("nope@2", 1))
    assert caught.value.code == "unknown_plugin" and not caught.value.retryable
    assert "no plugin nope@2 is registered" in caught.value.message


@pytest.mark.asyncio
async def test_output_that_is_not_json_is_invalid_output(handler: WasmHandler) -> None:
    with pytest.raises(PluginError) as caught:
        await handler(_task("junk", 1))
    assert caught.value.code == "invalid_output"


@pytest.mark.asyncio
async def test_a_node_tightens_the_limits_and_its_timeout_bounds_the_deadline(handler: WasmHandler) -> None:
    with pytest.raises(PluginError) as caught:
        await handler(_task("loop", None, fuel=1000))
    assert caught.value.code == "fuel" and "1,000 instructions" in caught.value.message
    with pytest.raises(PluginError) as caught:
        await handler(_task("loop", None, timeout=0.2, fuel=10**15))
    assert caught.value.code == "deadline" and "0.2s" in caught.value.message
    with pytest.raises(PluginError) as caught:
        await handler(_task("echo", "x" * 100, output=64))
    assert caught.value.code == "output_size"


def test_a_node_can_lower_a_limit_but_never_raise_it() -> None:
    tight = DEFAULTS.tighten({"fuel": 10, "memory": 1 << 20, "deadline": 9.0, "output": None}, timeout=2.0)
    assert tight == Limits(fuel=10, memory_bytes=1 << 20, deadline_s=2.0, output_bytes=1 << 20)
    assert DEFAULTS.tighten({"fuel": 10**12, "memory": 1 << 40, "deadline": 60.0}) == DEFAULTS
