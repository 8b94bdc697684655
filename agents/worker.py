"""A worker process: the executors, and the orchestrator on its librdkafka loop or as a Faust agent."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import time
from collections.abc import Awaitable, Callable
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

#: Seconds between two readings of the consumer lag.
LAG_INTERVAL_S = 5.0


class Executors:
    """Every executor of a worker, and the clients and pools they share; started and stopped on its loop.

    ``on_fatal`` is called on the loop if an executor's consumer thread dies: the worker must then stop, or
    it would keep partitions whose tasks nobody takes.
    """

    def __init__(self, settings: Settings, on_fatal: Callable[[BaseException], None]) -> None:
        result_errors = PRODUCER_ERRORS.labels("results")
        self.results = DeliveryProducer(
            settings, on_error=lambda reason: result_errors.inc(), **{"linger.ms": settings.producer_linger_ms}
        )
        self.http = HttpHandler(settings.http_concurrency)
        executors = [Executor(settings, "http", self.http, settings.http_concurrency)]

        budgets = Budgets.load(settings.budgets_file)
        self.ledger = UsageLedger(settings) if budgets.needs_daily_usage else None
        if self.ledger is not None:
            self.ledger.start(now=time.time())
        self.providers = Providers(settings)
        # Token deltas are for live views only: sent at once, outside any transaction, so a watcher sees the
        # answer being written rather than at the next commit.
        token_errors = PRODUCER_ERRORS.labels("tokens")
        self.tokens = RecordProducer(settings, on_error=lambda reason: token_errors.inc(), **{"linger.ms": 0})
        ai = AiHandler(
            self.providers,
            pricing=load_pricing(settings.pricing_file),
            budgets=budgets,
            default_timeout_s=settings.ai_timeout_s,
            tokens=self.tokens,
            tokens_topic=Catalog(settings).name(Role.TOKENS),
            ledger=self.ledger,
        )
        executors.append(Executor(settings, "ai", ai, settings.ai_concurrency))

        self.plugins = PluginRegistry(settings)
        self.plugins.follow()
        self.wasm_host = WasmHost(
            allowed=parse_allowed(settings.wasm_host_functions),
            max_instances=settings.wasm_max_instances,
            cache_dir=settings.wasm_cache_dir,
            inline_fuel=settings.wasm_inline_fuel,
        )
        wasm = WasmHandler(self.wasm_host, self.plugins, Limits.from_settings(settings))
        # Tasks wait in the host's queue, not for the executor: each instance thread finds its next call ready.
        executors.append(Executor(settings, "wasm", wasm, settings.wasm_max_instances * WASM_TASKS_PER_INSTANCE))
        self.runners = [TaskRunner(settings, executor, self.results, on_fatal=on_fatal) for executor in executors]

    def start(self) -> None:
        """Start taking tasks; call on the event loop the handlers run on."""
        for runner in self.runners:
            runner.start()

    async def stop(self) -> None:
        """Let running tasks finish (``EXECUTOR_GRACE_S``), then close every client and pool."""
        # The executors stop first, so no task is still using the pools below.
        await asyncio.gather(*(runner.stop(EXECUTOR_GRACE_S) for runner in self.runners))
        self.results.close()
        await self.http.aclose()
        await self.providers.aclose()
        try:
            self.tokens.flush(timeout=5)
        except StreamsError as err:
            log.warning("some token deltas were not delivered: %s", err)
        if self.ledger is not None:
            self.ledger.close()
        self.wasm_host.close()
        self.plugins.close()


def build_worker(settings: Settings) -> faust.App:
    """A Faust app with the orchestrator as its agent and the executors; topics are created before it starts."""
    app = create_app(settings)
    registry = DefinitionRegistry(settings)
    registry.follow()
    Orchestrator(app, settings, registry)
    crashing: list[asyncio.Future[None]] = []

    def fail(err: BaseException) -> None:
        # The worker stops and exits non-zero, which hands its partitions to the others. A supervisor
        # starts it again.
        crashing.append(asyncio.ensure_future(app.crash(err)))

    executors = Executors(settings, on_fatal=fail)

    async def start_executors() -> None:
        executors.start()

    app.task(start_executors)

    async def close_resources(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await executors.stop()
        registry.close()

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
    if settings.orchestrator == "loop":
        from agents.loop_worker import serve

        configure_logging(settings, loglevel)
        tune_gc()
        (uvloop.run if settings.event_loop == "uvloop" else asyncio.run)(serve(settings))
        return
    app = build_worker(settings)
    if settings.metrics_port is not None:
        lag = serve_metrics(settings)
        app.timer(interval=LAG_INTERVAL_S, name="awe.lag")(lag)
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


def serve_metrics(settings: Settings) -> Callable[[], Awaitable[None]]:
    """Serve ``/metrics`` on the configured port; returns what keeps the consumer-lag gauge current."""
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

    return measure_lag


def configure_logging(settings: Settings, loglevel: str) -> None:
    """Log lines as Faust's worker writes them (or JSON lines), for a worker that runs without Faust."""
    handler = json_log_handler() if settings.log_format == "json" else logging.StreamHandler()
    if settings.log_format != "json":
        handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"))
    logging.basicConfig(level=loglevel.upper(), handlers=[handler], force=True)
