"""The host on its own: the examples, every hostile plugin, limits, host functions and the compile cache."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path

import orjson
import pytest

from agents.exceptions import PluginError
from agents.wasm.host import PluginModule, WasmHost
from agents.wasm.limits import Limits
from agents.wasm.manifest import to_wasm
from tests.agents.wasm.plugins import BUSY, ECHO, HOSTILE, MALFORMED

LIMITS = Limits(fuel=1_000_000_000, memory_bytes=64 << 20, deadline_s=5.0, output_bytes=1 << 20)


def plugin(source: str | bytes, label: str = "test") -> PluginModule:
    wasm = to_wasm(source.encode() if isinstance(source, str) else source)
    return PluginModule(sha256=hashlib.sha256(wasm).hexdigest(), label=label, wasm=lambda: wasm)


def call(host: WasmHost, module: PluginModule, value: object, limits: Limits = LIMITS) -> object:
    return orjson.loads(host.call(module, orjson.dumps(value), limits))


def test_the_redactor_replaces_emails_and_phone_numbers_in_every_string(
    host: WasmHost, examples: dict[str, bytes]
) -> None:
    ticket = {"text": "Mail ada@example.com or call +1 555 0100 today", "id": 7, "cc": ["bob.smith@mail.co.uk"]}
    assert call(host, plugin(examples["redact"]), ticket) == {
        "value": {"text": "Mail [email] or call [phone] today", "id": 7, "cc": ["[email]"]},
        "redacted": 3,
    }
    untouched = ["error 500 on checkout", "x@y is not an address", 'say "hi"']
    assert call(host, plugin(examples["redact"]), untouched) == {"value": untouched, "redacted": 0}


def test_the_scorer_weights_keywords(host: WasmHost, examples: dict[str, bytes]) -> None:
    score = plugin(examples["score"])
    assert call(host, score, "URGENT: checkout returns 500!") == {"score": 60, "urgent": True, "hits": 3}
    assert call(host, score, {"text": "please reset my password"}) == {"score": 0, "urgent": False, "hits": 0}


def test_the_word_counter_counts_words_in_values_not_keys(host: WasmHost, examples: dict[str, bytes]) -> None:
    count = plugin(examples["wordcount"])
    assert call(host, count, {"title": "One two, three!", "tags": ["a b", "café"], "n": 3}) == {
        "words": 6,
        "strings": 3,
    }
    assert call(host, count, "line one\nline two") == {"words": 4, "strings": 1}


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - {"not_json"}))
def test_a_hostile_plugin_fails_with_its_limit_and_the_next_call_succeeds(host: WasmHost, name: str) -> None:
    source, code = HOSTILE[name]
    started = time.monotonic()
    with pytest.raises(PluginError) as caught:
        host.call(plugin(source), b"{}", LIMITS)
    assert caught.value.code == code
    assert not caught.value.retryable
    assert time.monotonic() - started < 10  # a runaway plugin is stopped within 10 s by default
    assert call(host, plugin(ECHO), {"after": name}) == {"after": name}


def test_each_limit_is_named_in_its_message(host: WasmHost) -> None:
    messages = {}
    for name in ("infinite_loop", "memory_bomb", "huge_output", "deep_recursion"):
        with pytest.raises(PluginError) as caught:
            host.call(plugin(HOSTILE[name][0]), b"{}", LIMITS)
        messages[name] = caught.value.message
    assert "fuel" in messages["infinite_loop"] and "1,000,000,000" in messages["infinite_loop"]
    assert "memory limit of 64 MiB" in messages["memory_bomb"]
    assert "output size limit of 1 MiB" in messages["huge_output"] and "8388608 bytes" in messages["huge_output"]
    assert "stack" in messages["deep_recursion"]


def test_the_deadline_stops_a_loop_that_fuel_would_not(host: WasmHost) -> None:
    limits = Limits(fuel=10**15, memory_bytes=64 << 20, deadline_s=0.3, output_bytes=1 << 20)
    started = time.monotonic()
    with pytest.raises(PluginError) as caught:
        host.call(plugin(HOSTILE["infinite_loop"][0]), b"{}", limits)
    elapsed = time.monotonic() - started
    assert caught.value.code == "deadline" and "deadline of 0.3s" in caught.value.message
    assert 0.25 < elapsed < 2


def test_an_initial_memory_over_the_limit_is_the_memory_limit(host: WasmHost) -> None:
    big = ECHO.replace('(memory (export "memory") 1)', '(memory (export "memory") 100)')  # 6.25 MiB
    limits = Limits(fuel=10**9, memory_bytes=4 << 20, deadline_s=5, output_bytes=1 << 20)
    with pytest.raises(PluginError) as caught:
        host.call(plugin(big), b"{}", limits)
    assert caught.value.code == "memory" and "4 MiB" in caught.value.message


def test_an_output_of_one_mebibyte_is_allowed_by_default(host: WasmHost) -> None:
    # The plugin echoes its input, so an input string of 1 MiB - 2 bytes makes an output of exactly 1 MiB.
    text = "x" * ((1 << 20) - 2)
    assert call(host, plugin(ECHO), text) == text
    with pytest.raises(PluginError) as caught:
        host.call(plugin(ECHO), orjson.dumps(text + "x"), LIMITS)
    assert caught.value.code == "output_size"


def test_malformed_and_non_plugin_modules_are_invalid(host: WasmHost) -> None:
    with pytest.raises(PluginError) as caught:
        host.call(plugin(MALFORMED), b"{}", LIMITS)
    assert caught.value.code == "invalid_module" and "not a valid WebAssembly module" in caught.value.message
    with pytest.raises(PluginError) as caught:
        host.call(plugin('(module (memory (export "memory") 1))'), b"{}", LIMITS)
    assert caught.value.code == "invalid_module"
    assert "export a function alloc(i32) -> i32" in caught.value.message
    assert "export a function run(i32, i32) -> i64" in caught.value.message


def test_a_host_function_the_operator_did_not_allow_is_denied(tmp_path: Path) -> None:
    clock = ECHO.replace("(module ", '(module (import "awe" "clock_ms" (func $clock (result i64))) ')
    strict = WasmHost(allowed=frozenset(), max_instances=1, cache_dir=tmp_path)
    try:
        with pytest.raises(PluginError) as caught:
            strict.call(plugin(clock), b"1", LIMITS)
        assert caught.value.code == "denied_import"
        assert "awe.clock_ms is not allowed on this worker" in caught.value.message
    finally:
        strict.close()
    lenient = WasmHost(allowed=frozenset({"clock_ms"}), max_instances=1, cache_dir=tmp_path)
    try:
        assert lenient.call(plugin(clock), b"1", LIMITS) == b"1"
    finally:
        lenient.close()


def test_an_unknown_import_names_what_the_host_offers(host: WasmHost) -> None:
    with pytest.raises(PluginError) as caught:
        host.call(plugin(HOSTILE["unknown_import"][0]), b"{}", LIMITS)
    assert "env.getenv is not an awe host function" in caught.value.message
    assert "awe.log" in caught.value.message


def test_an_allowed_log_call_reaches_the_worker_log(host: WasmHost, caplog: pytest.LogCaptureFixture) -> None:
    logging_plugin = ECHO.replace("(module ", '(module (import "awe" "log" (func $log (param i32 i32))) ').replace(
        "(i64.or", "(call $log (local.get $ptr) (local.get $len)) (i64.or"
    )
    with caplog.at_level(logging.INFO, logger="awe.plugin"):
        assert call(host, plugin(logging_plugin, label="logger@1"), "hello from wasm") == "hello from wasm"
    assert 'plugin logger@1: "hello from wasm"' in caplog.text


def test_a_hot_plugin_is_compiled_once_and_a_new_host_reuses_the_compilation(tmp_path: Path) -> None:
    echo = plugin(ECHO)
    first = WasmHost(allowed=frozenset(), max_instances=1, cache_dir=tmp_path)
    try:
        for i in range(20):
            assert call(first, echo, i) == i
        assert (first.cache.stats.compiles, first.cache.stats.memory_hits) == (1, 19)
    finally:
        first.close()
    second = WasmHost(allowed=frozenset(), max_instances=1, cache_dir=tmp_path)
    try:
        assert call(second, echo, "again") == "again"
        assert (second.cache.stats.compiles, second.cache.stats.disk_hits) == (0, 1)
    finally:
        second.close()


def test_a_damaged_cache_file_is_compiled_again(tmp_path: Path) -> None:
    echo = plugin(ECHO)
    (tmp_path / f"{echo.sha256}.cwasm").write_bytes(b"not a compiled module")
    host = WasmHost(allowed=frozenset(), max_instances=1, cache_dir=tmp_path)
    try:
        assert call(host, echo, 1) == 1
        assert host.cache.stats.compiles == 1
    finally:
        host.close()


def test_a_module_that_does_not_match_its_hash_is_refused(host: WasmHost) -> None:
    wasm = to_wasm(ECHO.encode())
    forged = PluginModule(sha256="0" * 64, label="forged", wasm=lambda: wasm)
    with pytest.raises(PluginError) as caught:
        host.call(forged, b"{}", LIMITS)
    assert caught.value.code == "invalid_module" and "does not match its hash" in caught.value.message


@pytest.mark.asyncio
async def test_fifty_concurrent_calls_all_answer_and_the_loop_stays_free(host: WasmHost) -> None:
    echo = plugin(ECHO)
    longest_gap = 0.0

    async def ticker() -> None:
        nonlocal longest_gap
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest_gap, last = max(longest_gap, now - last), now

    beat = asyncio.create_task(ticker())
    slow = Limits(fuel=10**15, memory_bytes=64 << 20, deadline_s=0.5, output_bytes=1 << 20)
    try:
        # Four runaway plugins hold every instance slot for 0.5 s while 50 good calls queue behind them.
        runaway = [host.run(plugin(HOSTILE["infinite_loop"][0]), b"{}", slow) for _ in range(4)]
        good = [host.run(echo, orjson.dumps({"i": i}), LIMITS) for i in range(50)]
        results = await asyncio.gather(*runaway, *good, return_exceptions=True)
    finally:
        beat.cancel()
    assert all(isinstance(r, PluginError) and r.code == "deadline" for r in results[:4])
    assert [orjson.loads(r) for r in results[4:] if isinstance(r, bytes)] == [{"i": i} for i in range(50)]
    # Had a plugin run on the loop, the loop would have stood still for a whole 0.5 s runaway call.
    assert longest_gap < 0.3


@pytest.mark.asyncio
async def test_a_small_call_runs_inline_and_a_heavy_plugin_moves_to_the_pool(host: WasmHost) -> None:
    echo, busy = plugin(ECHO), plugin(BUSY)
    assert orjson.loads(await host.run(echo, b'{"a": 1}', LIMITS)) == {"a": 1}
    assert (host.stats.inline, host.stats.pooled) == (1, 0)
    # Over the inline budget but within its own limits: run again on the pool, and answered all the same.
    assert orjson.loads(await host.run(busy, b'{"b": 2}', LIMITS)) == {"b": 2}
    assert (host.stats.inline, host.stats.pooled) == (2, 1)
    assert orjson.loads(await host.run(busy, b'{"b": 3}', LIMITS)) == {"b": 3}
    assert (host.stats.inline, host.stats.pooled) == (2, 2)
    assert orjson.loads(await host.run(echo, b'{"a": 4}', LIMITS)) == {"a": 4}
    assert host.stats.inline == 3


@pytest.mark.asyncio
async def test_running_out_of_the_inline_budget_is_not_the_plugins_fuel_error(host: WasmHost) -> None:
    with pytest.raises(PluginError) as caught:
        await host.run(plugin(HOSTILE["infinite_loop"][0]), b"{}", LIMITS)
    # The limit named is the node's own fuel, spent in full on the pool, not the worker's inline budget.
    assert caught.value.code == "fuel" and "1,000,000,000" in caught.value.message
    assert host.stats.pooled == 1
    tight = Limits(fuel=10_000, memory_bytes=64 << 20, deadline_s=5.0, output_bytes=1 << 20)
    with pytest.raises(PluginError) as caught:
        await host.run(plugin(BUSY), b"{}", tight)
    # A node whose own fuel is below the inline budget fails inline: there is nothing more to give it.
    assert caught.value.code == "fuel" and "10,000" in caught.value.message
    assert host.stats.pooled == 1
