"""A worker process: the orchestrator, the executors and the timer wheel in one Faust app."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import time
from typing import Any

import faust
import uvloop
from prometheus_client import start_http_server

from agents import metrics
from agents.ai.budgets import Budgets
from agents.ai.pricing import load_pricing
from agents.ai.registry import Providers
from agents.executors.ai import AiHandler
from agents.executors.base import Executor
from agents.executors.http import HttpHandler
from agents.executors.runner import TaskRunner, executor_group
from agents.executors.wasm import WasmHandler
from agents.metrics import CONSUMER_LAG, PRODUCER_ERRORS
from agents.orchestrator import Orchestrator
from agents.wasm.host import WasmHost
from agents.wasm.hostfns import parse_allowed
from agents.wasm.limits import Limits
from streams.admin import ensure_topics
from streams.app import create_app
from streams.delivery import DeliveryProducer
from streams.exceptions import StreamsError
from streams.lag import LagProbe
from streams.logs import json_log_handler
from streams.plugins import PluginRegistry
from streams.producer import RecordProducer
from streams.registry import DefinitionRegistry
from streams.settings import Settings
from streams.topics import TASK_KINDS, Catalog, Role
from streams.usage import UsageLedger

log = logging.getLogger("awe.worker")

#: wasm tasks taken from Kafka per plugin instance the worker may run at once.
WASM_TASKS_PER_INSTANCE = 4

#: How long a stopping worker lets its running tasks finish; the rest run again on the next owner.
EXECUTOR_GRACE_S = 10.0

#: Allocations between collections of the youngest generation, and collections of each generation between
#: collections of the next (CPython's defaults: 700, 10, 10). A hop allocates thousands of short-lived
#: objects, which reference counting frees; at the defaults a worker at 300 runs/s collected 170 times a
#: second and its full collections, which walk every object it holds, stopped it for ~160 ms each.
GC_THRESHOLDS = (20_000, 20, 10)


def build_worker(settings: Settings) -> faust.App:
    """A Faust app with every agent of awe registered; topics are created before it starts."""
    app = create_app(settings)
    registry = DefinitionRegistry(settings)
    registry.follow()
    Orchestrator(app, settings, registry)
    result_errors = PRODUCER_ERRORS.labels("results")
    results = DeliveryProducer(
        settings, on_error=lambda reason: result_errors.inc(), **{"linger.ms": settings.producer_linger_ms}
    )
    http = HttpHandler(settings.http_concurrency)
    executors = [Executor(settings, "http", http, settings.http_concurrency)]

    budgets = Budgets.load(settings.budgets_file)
    ledger = UsageLedger(settings) if budgets.needs_daily_usage else None
    if ledger is not None:
        ledger.start(now=time.time())
    providers = Providers(settings)
    # Token deltas are for live views only: sent at once, outside any transaction, so a watcher sees the
    # answer being written rather than at the next commit.
    token_errors = PRODUCER_ERRORS.labels("tokens")
    tokens = RecordProducer(settings, on_error=lambda reason: token_errors.inc(), **{"linger.ms": 0})
    ai = AiHandler(
        providers,
        pricing=load_pricing(settings.pricing_file),
        budgets=budgets,
        default_timeout_s=settings.ai_timeout_s,
        tokens=tokens,
        tokens_topic=Catalog(settings).name(Role.TOKENS),
        ledger=ledger,
    )
    executors.append(Executor(settings, "ai", ai, settings.ai_concurrency))

    plugins = PluginRegistry(settings)
    plugins.follow()
    wasm_host = WasmHost(
        allowed=parse_allowed(settings.wasm_host_functions),
        max_instances=settings.wasm_max_instances,
        cache_dir=settings.wasm_cache_dir,
        inline_fuel=settings.wasm_inline_fuel,
    )
    wasm = WasmHandler(wasm_host, plugins, Limits.from_settings(settings))
    # Tasks wait in the host's queue, not for the executor: each instance thread finds its next call ready.
    executors.append(Executor(settings, "wasm", wasm, settings.wasm_max_instances * WASM_TASKS_PER_INSTANCE))
    crashing: list[asyncio.Future[None]] = []

    def fail(err: BaseException) -> None:
        # The worker stops and exits non-zero, which hands its partitions to the others; left running, it
        # would keep partitions whose tasks nobody takes. A supervisor starts it again.
        crashing.append(asyncio.ensure_future(app.crash(err)))

    runners = [TaskRunner(settings, executor, results, on_fatal=fail) for executor in executors]

    async def start_executors() -> None:
        for runner in runners:
            runner.start()

    app.task(start_executors)

    async def close_resources(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # The executors stop first, so no task is still using the pools or the registry below.
        await asyncio.gather(*(runner.stop(EXECUTOR_GRACE_S) for runner in runners))
        results.close()
        await http.aclose()
        await providers.aclose()
        try:
            tokens.flush(timeout=5)
        except StreamsError as err:
            log.warning("some token deltas were not delivered: %s", err)
        if ledger is not None:
            ledger.close()
        registry.close()
        wasm_host.close()
        plugins.close()

    app.on_before_shutdown.connect(close_resources)

    return app


def run_worker(settings: Settings, *, loglevel: str = "info") -> None:
    """Create the topics, then run a worker until SIGINT or SIGTERM."""
    # A crash in native code (librdkafka, wasmtime, uvloop) then leaves every thread's stack in the log.
    faulthandler.enable()
    if settings.event_loop == "uvloop":
        # Every hop is a few socket reads and writes and many loop turns on the main loop; uvloop makes
        # each of them cheaper. Only the main thread's loop: Faust's consumer thread keeps asyncio's, since
        # with uvloop there too a worker stopped during a rebalance crashed in it (SIGSEGV, about one stop in
        # three with two workers).
        asyncio.set_event_loop(uvloop.new_event_loop())
    ensure_topics(settings)
    app = build_worker(settings)
    if settings.metrics_port is not None:
        serve_metrics(app, settings)
    if settings.log_format == "json":
        app.conf.loghandlers = [json_log_handler()]
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # Faust draws a spinner on a terminal at levels above info; under `awe dev` it shares the terminal
    # with the demo's own output and keeps drawing until Ctrl-C.
    worker.spinner = None
    tune_gc()
    worker.execute_from_commandline()


def tune_gc() -> None:
    """Leave what was built at start out of every collection, and collect less often (``GC_THRESHOLDS``)."""
    # Modules, the app and the clients are several hundred thousand objects that live as long as the
    # process; a full collection walked them all each time.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve_metrics(app: faust.App, settings: Settings) -> None:
    """Serve ``/metrics`` on the configured port and keep the consumer-lag gauge current."""
    assert settings.metrics_port is not None
    metrics.enable()
    start_http_server(settings.metrics_port, addr=settings.metrics_host)
    catalog = Catalog(settings)
    probes = [LagProbe(settings, settings.app_id, [catalog.name(Role.COMMANDS), catalog.name(Role.RESULTS)])]
    probes += [LagProbe(settings, executor_group(settings, kind), [catalog.tasks(kind)]) for kind in TASK_KINDS]

    async def measure_lag() -> None:
        for probe in probes:
            for (topic, partition), lag in (await asyncio.to_thread(probe.measure)).items():
                CONSUMER_LAG.labels(topic, str(partition)).set(lag)

    app.timer(interval=5.0, name="awe.lag")(measure_lag)
