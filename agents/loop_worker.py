"""A worker without Faust: the orchestrator's librdkafka loop and the executors, on one asyncio loop.

This is the worker unless ``AWE_ORCHESTRATOR=faust`` asks for the Faust app (``agents/worker.py``). The
executors are the same in both; the orchestrator is ``agents/loop.py`` in a thread of its own. It prints
``Worker ready`` once its first partitions are restored, as Faust's worker does, and stops on SIGINT or
SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from agents.loop import OrchestratorLoop
from agents.worker import LAG_INTERVAL_S, Executors, serve_metrics
from streams.registry import DefinitionRegistry
from streams.settings import Settings

log = logging.getLogger("awe.worker")


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM; raise what killed the orchestrator's or an executor's thread."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    failures: list[BaseException] = []

    def fail(err: BaseException) -> None:
        failures.append(err)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    measure = serve_metrics(settings) if settings.metrics_port is not None else None
    registry = DefinitionRegistry(settings)
    registry.follow()
    executors = Executors(settings, on_fatal=fail)
    executors.start()

    def ready() -> None:
        loop.call_soon_threadsafe(log.info, "Worker ready")

    def died(err: BaseException) -> None:
        loop.call_soon_threadsafe(fail, err)

    orchestrator = OrchestratorLoop(settings, registry, on_ready=ready, on_fatal=died)
    orchestrator.start()
    lag = asyncio.ensure_future(_measure_lag(measure)) if measure is not None else None
    await stopping.wait()
    log.info("stopping")
    if lag is not None:
        lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag
    await asyncio.to_thread(orchestrator.stop)
    await executors.stop()
    registry.close()
    if failures:
        raise failures[0]


async def _measure_lag(measure: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await measure()
        except Exception:  # a probe that failed once reads again next time
            log.warning("consumer lag not measured", exc_info=True)
        await asyncio.sleep(LAG_INTERVAL_S)
