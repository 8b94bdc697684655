"""WASM plugin benchmark: what awe's executor adds to a plugin call, and wasm nodes/s through Kafka.

In the same run it measures, for a small plugin (``wordcount``, from examples/plugins):
- ``direct``: wasmtime alone, one call at a time: a new store and instance (from a linked, compiled
  module), alloc, write the input, run, read the output (the baseline);
- ``executor``: the wasm executor's own code path, Kafka excluded: decode the task record, look up the
  plugin, the instance from the compile cache, the call under every limit, parse the output, encode the
  result record; one call at a time, then with as many in flight as the worker takes tasks
  (``AWE_WASM_MAX_INSTANCES`` instances, 4 tasks per instance). The plugin fits the inline fuel budget, so
  its calls run on the loop, as in a worker; the same path with inlining off (every call handed to the
  host's thread pool, as a plugin over the budget is) is measured beside it;
- ``end to end``: ``wasm`` nodes/s through a real broker and worker, for a 3-node chain
  (redact -> score and wordcount), with closed-loop clients, under each delivery guarantee.

    python benchmarks/wasm.py                # starts its own broker unless AWE_KAFKA_BOOTSTRAP is set
    python benchmarks/wasm.py --calls 5000 --seconds 8 --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
import wasmtime  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from engine import Waiter, closed_loop, pct, start_worker  # noqa: E402

from agents.executors.wasm import WasmHandler  # noqa: E402
from agents.wasm.host import WasmHost, make_engine  # noqa: E402
from agents.wasm.limits import Limits  # noqa: E402
from agents.wasm.manifest import inspect  # noqa: E402
from agents.worker import WASM_TASKS_PER_INSTANCE  # noqa: E402
from schemas.plugins import PluginRef  # noqa: E402
from schemas.tasks import Task, TaskResult  # noqa: E402
from schemas.validation import validate_definition  # noqa: E402
from streams.admin import ensure_topics  # noqa: E402
from streams.codec import decode, encode  # noqa: E402
from streams.plugins import PluginRegistry, PluginTag, RegisteredPlugin  # noqa: E402
from streams.producer import producer_config  # noqa: E402
from streams.registry import DefinitionRegistry  # noqa: E402
from streams.settings import Settings  # noqa: E402

BUILT = REPO / "examples" / "plugins" / "build"
INPUT = {"text": "URGENT: checkout returns 500 for every customer since midnight", "tags": ["web", "payments"]}


def direct(wasm: bytes, calls: int) -> float:
    """Calls/s of wasmtime alone, with the same engine configuration and limits as awe's host."""
    engine = make_engine()
    pre = wasmtime.Linker(engine).instantiate_pre(wasmtime.Module(engine, wasm))
    data = orjson.dumps(INPUT)
    started = time.perf_counter()
    for _ in range(calls):
        store = wasmtime.Store(engine)
        store.set_fuel(1_000_000_000)
        store.set_epoch_deadline(1_000_000)
        store.set_limits(memory_size=64 << 20)
        exports = pre.instantiate(store).exports(store)
        memory, alloc, run = exports["memory"], exports["alloc"], exports["run"]
        assert isinstance(memory, wasmtime.Memory)
        assert isinstance(alloc, wasmtime.Func) and isinstance(run, wasmtime.Func)
        ptr = alloc(store, len(data))
        assert isinstance(ptr, int)
        memory.write(store, data, ptr)
        result = run(store, ptr, len(data))
        assert isinstance(result, int)
        result &= 0xFFFFFFFFFFFFFFFF
        orjson.loads(memory.read(store, result >> 32, (result >> 32) + (result & 0xFFFFFFFF)))
    return calls / (time.perf_counter() - started)


class OnePlugin:
    """The plugin source of the executor path: one registered plugin, in memory."""

    def __init__(self, record: RegisteredPlugin) -> None:
        self.record = record

    def get(self, ref: PluginRef) -> RegisteredPlugin | None:
        return self.record if ref.name == self.record.tags[0].name else None

    def resolve(self, ref: PluginRef) -> RegisteredPlugin | None:
        return self.get(ref)


async def executor_path(wasm: bytes, calls: int, in_flight: int, settings: Settings) -> float:
    """Calls/s of the executor's code path: task record in, result record out, Kafka excluded."""
    record = RegisteredPlugin(
        sha256=hashlib.sha256(wasm).hexdigest(),
        module=wasm,
        manifest=inspect(make_engine(), wasm),
        tags=[PluginTag(name="wordcount", version="1", registered_at=time.time())],  # type: ignore[arg-type]
    )
    host = WasmHost(
        allowed=frozenset(),
        max_instances=settings.wasm_max_instances,
        cache_dir=Path(tempfile.mkdtemp()),
        inline_fuel=settings.wasm_inline_fuel,
    )
    handler = WasmHandler(host, OnePlugin(record), Limits.from_settings(settings))
    task = Task(
        task_id="r:n:1",
        run_id="r",
        tenant_id="default",
        node_id="n",
        kind="wasm",
        attempt=1,
        params={"plugin": "wordcount", "input": INPUT, "limits": {}},
    )
    raw = encode(task)
    await handler(decode(raw, Task))  # compiles once, outside the measurement

    async def one() -> None:
        t = decode(raw, Task)
        output = await handler(t)
        encode(
            TaskResult(
                task_id=t.task_id,
                run_id=t.run_id,
                tenant_id=t.tenant_id,
                node_id=t.node_id,
                attempt=t.attempt,
                ok=True,
                output=output,
            )
        )

    slots = asyncio.Semaphore(in_flight)

    async def bounded() -> None:
        async with slots:
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(bounded() for _ in range(calls)))
    rate = calls / (time.perf_counter() - started)
    host.close()
    return rate


def chain() -> dict[str, object]:
    node = {"kind": "wasm"}
    return {
        "name": "bench-wasm-chain",
        "nodes": {
            "clean": {**node, "plugin": "redact", "input": {"text": INPUT["text"] + " mail ada@example.com"}},
            "score": {
                **node,
                "plugin": "score",
                "input": "{{ nodes.clean.output.value.text }}",
                "depends_on": ["clean"],
            },
            "words": {
                **node,
                "plugin": "wordcount",
                "input": "{{ nodes.clean.output.value }}",
                "depends_on": ["clean"],
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000, help="calls per in-process measurement")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per end-to-end cell")
    parser.add_argument("--clients", type=int, default=16, help="closed-loop clients end to end")
    parser.add_argument("--guarantees", nargs="+", default=["exactly_once", "at_least_once"])
    args = parser.parse_args()
    settings = Settings()
    wasm = (BUILT / "wordcount.wasm").read_bytes()

    print(
        f"plugin wordcount ({len(wasm)} bytes), input {len(orjson.dumps(INPUT))} bytes of JSON; {os.cpu_count()} cores"
    )
    base = direct(wasm, args.calls)
    one = asyncio.run(executor_path(wasm, args.calls, 1, settings))
    in_flight = settings.wasm_max_instances * WASM_TASKS_PER_INSTANCE
    many = asyncio.run(executor_path(wasm, args.calls, in_flight, settings))
    pooled = settings.model_copy(update={"wasm_inline_fuel": 0})
    pooled_one = asyncio.run(executor_path(wasm, args.calls, 1, pooled))
    pooled_many = asyncio.run(executor_path(wasm, args.calls, in_flight, pooled))
    print(f"{'path':<44}{'calls/s':>10}{'vs direct':>11}")
    print(f"{'direct wasmtime, 1 at a time':<44}{base:>10.0f}{1.0:>11.2f}")
    print(f"{'executor path, 1 in flight':<44}{one:>10.0f}{one / base:>11.2f}")
    label = f"executor path, {in_flight} in flight, {settings.wasm_max_instances} instances"
    print(f"{label:<44}{many:>10.0f}{many / base:>11.2f}")
    print(f"{'thread pool only, 1 in flight':<44}{pooled_one:>10.0f}{pooled_one / base:>11.2f}")
    label = f"thread pool only, {in_flight} in flight"
    print(f"{label:<44}{pooled_many:>10.0f}{pooled_many / base:>11.2f}")
    print()

    with ExitStack() as stack:
        bootstrap = os.environ.get("AWE_KAFKA_BOOTSTRAP")
        if not bootstrap:
            from streams import launcher

            port = 39592
            bootstrap = launcher.up(port, ephemeral=True).bootstrap
            stack.callback(launcher.down, port)
        log_dir = Path(tempfile.mkdtemp(prefix="awe-bench-wasm-"))
        print(f"end to end: a 3-node wasm chain, {args.clients} closed-loop clients, {args.seconds:g}s per cell")
        print(f"{'guarantee':<16}{'runs/s':>8}{'wasm nodes/s':>14}{'run p50':>10}{'run p99':>10}")
        for guarantee in args.guarantees:
            tag = uuid.uuid4().hex[:6]
            cell = Settings(
                kafka_bootstrap=bootstrap,
                topic_prefix=f"benchwasm{tag}.",
                app_id=f"awe-bench-wasm-{tag}",
                processing_guarantee=guarantee,
                wasm_cache_dir=log_dir / "cache",
            )
            ensure_topics(cell)
            plugins = PluginRegistry(cell)
            for name in ("redact", "score", "wordcount"):
                module = (BUILT / f"{name}.wasm").read_bytes()
                plugins.add(module, inspect(make_engine(), module), name)
            plugins.close()
            registry = DefinitionRegistry(cell)
            registry.register(cell.tenant, validate_definition(chain()))
            registry.close()
            worker = start_worker(cell, log_dir)
            try:
                tally = asyncio.run(_measure(cell, args.clients, args.seconds))
            finally:
                worker.terminate()
                worker.wait(30)
            print(
                f"{guarantee:<16}{tally.rate:>8.1f}{tally.rate * 3:>14.1f}"
                f"{pct(tally.run_latencies, 0.5) * 1000:>8.1f}ms{pct(tally.run_latencies, 0.99) * 1000:>8.1f}ms"
                + (f"  ({tally.failed} failed)" if tally.failed else ""),
                flush=True,
            )


async def _measure(settings: Settings, clients: int, seconds: float):  # type: ignore[no-untyped-def]
    waiter = Waiter(settings, asyncio.get_running_loop())
    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    try:
        await closed_loop(settings, waiter, producer, "bench-wasm-chain", clients, 1.0)  # warm-up
        return await closed_loop(settings, waiter, producer, "bench-wasm-chain", clients, seconds)
    finally:
        waiter.stop.set()
        waiter.thread.join(5)
        producer.flush(5)


if __name__ == "__main__":
    main()
