"""The gateway application: routes, error handlers, and the lifespan that owns every resource (the
producer, the shared consumer thread, the definitions view, the read pool, the heartbeat)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, WebSocketRoute

from gateway.auth import Authenticator
from gateway.connection import CLOSE_GOING_AWAY
from gateway.directory import RunDirectory
from gateway.errors import HANDLERS
from gateway.exceptions import ConfigurationError
from gateway.fanout import FanOut, Live
from gateway.hub import Hub
from gateway.metrics import ROUTES as METRICS
from gateway.metrics import RequestMetrics
from gateway.openapi import ROUTES as OPENAPI
from gateway.producer import AsyncProducer
from gateway.ratelimit import TenantLimiter
from gateway.redact import redact_tokens_in_server_logs
from gateway.routes.health import ROUTES as HEALTH
from gateway.routes.me import ROUTES as ME
from gateway.routes.runs import ROUTES as RUNS
from gateway.routes.start import StartRunEndpoint
from gateway.routes.workflows import ROUTES as WORKFLOWS
from gateway.state import Gateway, Replayer
from gateway.stream import stream
from gateway.ui import ROUTES as UI
from streams.registry import DefinitionRegistry
from streams.settings import Settings

log = logging.getLogger("awe.gateway")

OPEN_WARNING = (
    "NO CREDENTIALS CONFIGURED: the gateway is OPEN. Anyone who can reach it acts as an admin of tenant "
    "'default'. Set AWE_API_KEYS, AWE_API_KEYS_FILE or AWE_JWT_* (and pass --require-auth) before exposing it."
)


def create_app(settings: Settings, *, require_auth: bool = False, replayer: Replayer | None = None) -> Starlette:
    """The Starlette app. Credentials are read (and keys hashed) here, so a bad configuration fails before
    the server starts; ``require_auth`` refuses to build an open gateway. Without a ``replayer``,
    ``POST /v1/runs/{id}/replay`` answers 501."""
    auth = Authenticator.from_settings(settings)
    redact_tokens_in_server_logs()
    if auth.open:
        if require_auth:
            raise ConfigurationError("--require-auth: no API keys and no JWT key are configured")
        log.warning(OPEN_WARNING)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        hub = Hub()

        def deliver(batch: list[Live]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody is left to deliver to
                loop.call_soon_threadsafe(hub.dispatch, batch)

        directory = RunDirectory()
        registry = DefinitionRegistry(settings)
        registry.follow()
        gateway = Gateway(
            settings=settings,
            auth=auth,
            limiter=TenantLimiter(settings.gateway_rate_limit, settings.gateway_rate_burst),
            producer=AsyncProducer(settings),
            registry=registry,
            directory=directory,
            hub=hub,
            fanout=FanOut(settings, directory, deliver),
            pool=ThreadPoolExecutor(8, thread_name_prefix="awe-gateway-read"),
            replayer=replayer,
        )
        gateway.fanout.start()
        heartbeat = loop.create_task(hub.heartbeat(settings.ws_ping_interval_s))
        try:
            yield {"gateway": gateway}
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            for connection in list(hub.connections):
                connection.close(CLOSE_GOING_AWAY, "shutting_down")
            gateway.fanout.stop()
            await gateway.producer.close()
            registry.close()
            gateway.pool.shutdown(wait=True, cancel_futures=True)

    routes: list[BaseRoute] = [
        *RUNS,
        *WORKFLOWS,
        *ME,
        WebSocketRoute("/v1/stream", stream),
        *HEALTH,
        *METRICS,
        *OPENAPI,
        *UI,
    ]
    return Starlette(
        routes=routes,
        exception_handlers=HANDLERS,
        lifespan=lifespan,
        # ``POST /v1/runs``, the busiest path, is answered ahead of the router (it counts its own metrics).
        middleware=[Middleware(StartRunEndpoint), Middleware(RequestMetrics)],
    )
