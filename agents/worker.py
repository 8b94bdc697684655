"""A worker process: the orchestrator, the executors and the timer wheel in one Faust app."""

from __future__ import annotations

from typing import Any

import faust

from agents.executors.base import Executor
from agents.executors.http import HttpHandler
from agents.orchestrator import Orchestrator
from streams.admin import ensure_topics
from streams.app import create_app
from streams.registry import DefinitionRegistry
from streams.settings import Settings


def build_worker(settings: Settings) -> faust.App:
    """A Faust app with every agent of awe registered; topics are created before it starts."""
    app = create_app(settings)
    registry = DefinitionRegistry(settings)
    registry.follow()
    Orchestrator(app, settings, registry)
    http = HttpHandler(settings.http_concurrency)
    Executor(app, settings, "http", http, settings.http_concurrency)

    async def close_resources(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Runs after the consumer stopped, so no task is still using the pool or the registry.
        await http.aclose()
        registry.close()

    app.on_before_shutdown.connect(close_resources)

    return app


def run_worker(settings: Settings, *, loglevel: str = "info") -> None:
    """Create the topics, then run a worker until SIGINT or SIGTERM."""
    ensure_topics(settings)
    app = build_worker(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
