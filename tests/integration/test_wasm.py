"""WASM plugin nodes end to end: plugins registered on ``awe.plugins``, run by a real worker on a real broker."""

from __future__ import annotations

import hashlib
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.wasm.host import make_engine
from agents.wasm.manifest import inspect, to_wasm
from schemas.plugins import PluginManifest
from schemas.state import RunState
from streams.admin import ensure_topics
from streams.plugins import PluginRegistry
from tests.agents.wasm.plugins import BIG_OUTPUT, ECHO, HOSTILE, MALFORMED, build_examples
from tests.harness import REPO, Engine, unique_settings, wait_until


@pytest.fixture(scope="module")
def wasm_engine(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Unique topics and one worker with a compile cache of its own (so its log shows every compilation).

    Its fuel budget is far above the default: a fast machine burns the default's 10^9 instructions in less
    than the 1 s deadline the deadline case sets, and the case then ends by fuel instead.
    """
    settings = unique_settings(kafka_bootstrap, wasm_fuel=100_000_000_000)
    ensure_topics(settings)
    cache = tmp_path_factory.mktemp("wasm-cache")
    eng = Engine(settings, tmp_path_factory.mktemp("wasm-workers"), env={"AWE_WASM_CACHE_DIR": str(cache)})
    eng.start_worker()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def plugins(wasm_engine: Engine) -> Iterator[PluginRegistry]:
    registry = PluginRegistry(wasm_engine.settings)
    yield registry
    registry.close()


def _add(registry: PluginRegistry, wasm: bytes, check: bool = True) -> str:
    """Register a module under a fresh name (checked as `awe plugin add` does, unless ``check`` is off)."""
    name = f"p{uuid.uuid4().hex[:8]}"
    manifest = inspect(make_engine(), wasm) if check else PluginManifest()
    registry.add(wasm, manifest, name)
    return name


def _run_node(engine: Engine, plugin: str, input: Any, **fields: Any) -> RunState:
    name = f"wasm-{uuid.uuid4().hex[:8]}"
    engine.apply({"name": name, "nodes": {"p": {"kind": "wasm", "plugin": plugin, "input": input, **fields}}})
    return engine.run(name, timeout=60)


def test_the_examples_run_as_a_chain_of_nodes(wasm_engine: Engine, plugins: PluginRegistry, tmp_path: Path) -> None:
    built = build_examples(tmp_path)
    names = {stem: _add(plugins, wasm) for stem, wasm in built.items()}
    wf = {
        "name": f"wasm-{uuid.uuid4().hex[:8]}",
        "inputs": {"ticket": {"type": "string", "required": True}},
        "nodes": {
            "clean": {"kind": "wasm", "plugin": f"{names['redact']}@1", "input": {"text": "{{ inputs.ticket }}"}},
            "score": {
                "kind": "wasm",
                "plugin": names["score"],
                "input": "{{ nodes.clean.output.value.text }}",
                "depends_on": ["clean"],
            },
            "words": {
                "kind": "wasm",
                "plugin": names["wordcount"],
                "input": "{{ nodes.clean.output.value }}",
                "depends_on": ["clean"],
            },
        },
        "outputs": {
            "text": "{{ nodes.clean.output.value.text }}",
            "score": "{{ nodes.score.output }}",
            "words": "{{ nodes.words.output.words }}",
        },
    }
    wasm_engine.apply(wf)
    state = wasm_engine.run(wf["name"], {"ticket": "URGENT: site down! Mail ada@example.com or +44 20 7946 0958"})
    assert state.status == "succeeded", state.error
    assert state.outputs == {
        "text": "URGENT: site down! Mail [email] or [phone]",
        "score": {"score": 65, "urgent": True, "hits": 3},
        "words": 7,
    }
    # The node's output is the plugin's JSON itself, on the log.
    succeeded = {e.payload["node_id"]: e.payload for e in wasm_engine.events(state.run_id) if e.type == "NodeSucceeded"}
    assert succeeded["clean"]["output"]["redacted"] == 2


def test_each_hostile_plugin_fails_its_node_and_the_next_run_succeeds(
    wasm_engine: Engine, plugins: PluginRegistry
) -> None:
    echo = _add(plugins, to_wasm(ECHO.encode()))
    cases: list[tuple[str, bytes, dict[str, Any], str, str]] = [
        ("infinite_loop", to_wasm(HOSTILE["infinite_loop"][0].encode()), {"fuel": 20_000_000}, "fuel", "fuel"),
        ("infinite_loop", to_wasm(HOSTILE["infinite_loop"][0].encode()), {"deadline": "1s"}, "deadline", "1s"),
        ("memory_bomb", to_wasm(HOSTILE["memory_bomb"][0].encode()), {"memory": "8MiB"}, "memory", "8 MiB"),
        ("deep_recursion", to_wasm(HOSTILE["deep_recursion"][0].encode()), {}, "stack", "stack"),
        ("huge_output", to_wasm(HOSTILE["huge_output"][0].encode()), {}, "output_size", "output size limit"),
        ("unknown_import", to_wasm(HOSTILE["unknown_import"][0].encode()), {}, "denied_import", "env.getenv"),
        ("malformed", MALFORMED, {}, "invalid_module", "not a valid WebAssembly module"),
    ]
    for label, wasm, limits, code, words in cases:
        name = _add(plugins, wasm, check=False)
        state = _run_node(wasm_engine, name, {"hostile": label}, limits=limits)
        assert state.status == "failed", label
        node = state.nodes["p"]
        assert node.error is not None, label
        assert (node.error.code, node.error.retryable) == (code, False), (label, node.error)
        assert words in node.error.message, (label, node.error.message)
        assert node.attempts == 1, label  # never retried
        after = _run_node(wasm_engine, echo, {"after": label})
        assert after.status == "succeeded" and after.outputs is not None, label
        assert after.nodes["p"].output == {"after": label}


def test_an_unknown_plugin_fails_its_node(wasm_engine: Engine) -> None:
    state = _run_node(wasm_engine, "no-such-plugin@3", 1)
    assert state.status == "failed"
    error = state.nodes["p"].error
    assert error is not None and error.code == "unknown_plugin" and "no-such-plugin@3" in error.message


def test_fifty_concurrent_runs_all_succeed_and_the_plugin_is_compiled_once(
    wasm_engine: Engine, plugins: PluginRegistry
) -> None:
    # A module of its own (a distinct constant), so the log line counted below is this test's.
    tag = uuid.uuid4().int % 1_000_000
    source = ECHO.replace("(i32.const 1024)", f"(i32.const {1024 + tag % 1000 * 8})")
    wasm = to_wasm(source.encode())
    name = _add(plugins, wasm)
    wf = f"wasm-{uuid.uuid4().hex[:8]}"
    wasm_engine.apply(
        {
            "name": wf,
            "inputs": {"i": {"type": "integer"}},
            "nodes": {"p": {"kind": "wasm", "plugin": name, "input": {"i": "{{ inputs.i }}"}}},
        }
    )
    started = [wasm_engine.start(wf, {"i": i}) for i in range(50)]
    states = [wasm_engine.wait(run_id, offset, timeout=120) for run_id, offset in started]
    assert [s.status for s in states] == ["succeeded"] * 50
    assert [s.nodes["p"].output for s in states] == [{"i": i} for i in range(50)]
    prefix = hashlib.sha256(wasm).hexdigest()[:12]
    log = wasm_engine.workers[0]
    wait_until(lambda: f"compiled plugin {prefix}" in log.log_path.read_text(), timeout=10)
    assert log.log_path.read_text().count(f"compiled plugin {prefix}") == 1


def _doc_blocks(language: str) -> list[str]:
    text = (REPO / "docs" / "plugins.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_plugins_written_from_the_abi_document_run_in_a_workflow(
    wasm_engine: Engine, plugins: PluginRegistry, tmp_path: Path
) -> None:
    (wat,) = _doc_blocks("wat")
    (c_source,) = _doc_blocks("c")
    source = tmp_path / "length.c"
    source.write_text(c_source)
    built = tmp_path / "length.wasm"
    # The build command the document gives, word for word.
    (command,) = [line for line in _doc_blocks("bash")[1].splitlines() if line.startswith("clang")]
    subprocess.run(command.split(), cwd=tmp_path, check=True)
    you_sent = _add(plugins, to_wasm(wat.encode()))
    length = _add(plugins, built.read_bytes())
    state = _run_node(wasm_engine, you_sent, {"hello": ["wasm", 1]})
    assert state.status == "succeeded", state.error
    assert state.nodes["p"].output == {"you_sent": {"hello": ["wasm", 1]}}
    state = _run_node(wasm_engine, length, "twelve bytes")
    assert state.status == "succeeded", state.error
    assert state.nodes["p"].output == {"bytes": len('"twelve bytes"')}


def test_an_output_of_one_mebibyte_goes_through_kafka(wasm_engine: Engine, plugins: PluginRegistry) -> None:
    # The default output limit is 1 MiB, and Kafka's default record limit is 1 MiB too: the result, the
    # event and the run's state around such an output must still fit (AWE_RECORD_MAX_BYTES).
    state = _run_node(wasm_engine, _add(plugins, to_wasm(BIG_OUTPUT.encode())), {})
    assert state.status == "succeeded", state.nodes["p"].error
    assert state.nodes["p"].output == "a" * ((1 << 20) - 2)
