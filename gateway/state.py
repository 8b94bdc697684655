"""The gateway's resources, made and closed by the app's lifespan and handed to handlers as typed state,
and the check every handler starts with: who is calling, within their tenant's rate, in a role that may."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from starlette.requests import HTTPConnection

from gateway.auth import Authenticator, Principal, Role
from gateway.directory import RunDirectory
from gateway.exceptions import NotReadyError, RateLimitedError
from gateway.fanout import FanOut
from gateway.hub import Hub
from gateway.idempotency import RecentStarts
from gateway.producer import AsyncProducer
from gateway.ratelimit import TenantLimiter
from schemas.envelope import Envelope
from streams.registry import DefinitionRegistry
from streams.settings import Settings
from streams.topics import Catalog
from streams.topics import Role as TopicRole

log = logging.getLogger("awe.gateway")
T = TypeVar("T")

#: Replays a run from its recorded events and reports, as JSON-ready data, how the engine's output differs.
#: The engine's ``decide`` lives in ``agents``, which the gateway never imports: the composition root
#: (``awe gateway``) hands this in.
Replayer = Callable[[list[Envelope]], dict[str, Any]]


@dataclass
class Gateway:
    """Everything a request handler or a WebSocket may use; one per app."""

    settings: Settings
    auth: Authenticator
    limiter: TenantLimiter
    producer: AsyncProducer
    registry: DefinitionRegistry
    directory: RunDirectory
    hub: Hub
    fanout: FanOut
    pool: ThreadPoolExecutor
    replayer: Replayer | None = None
    recent: RecentStarts = field(default_factory=RecentStarts)
    register_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Connections the gateway closed, by reason; the usual reasons start at zero so dashboards show them.
    closes: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("slow_consumer", "heartbeat_timeout", "shutting_down"), 0)
    )

    @functools.cached_property
    def commands_topic(self) -> str:
        """Where commands go."""
        return Catalog(self.settings).name(TopicRole.COMMANDS)

    @property
    def events_topic(self) -> str:
        """The event store."""
        return self.fanout.events_topic

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking Kafka read in the gateway's pool, never on the loop."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def require_ready(self) -> None:
        """NotReadyError until the shared consumer has folded the history it started with."""
        if not self.fanout.ready.is_set():
            raise NotReadyError("the gateway is still reading the event store; try again shortly")


def gateway_of(conn: HTTPConnection) -> Gateway:
    """The app's Gateway (set by the lifespan; read from the scope, not through a ``State`` made per request)."""
    return cast(Gateway, conn.scope["state"]["gateway"])


def authorize(conn: HTTPConnection, role: Role = Role.VIEWER) -> tuple[Gateway, Principal]:
    """Authenticate the caller, charge their tenant's rate limit and check their role."""
    gateway = gateway_of(conn)
    return gateway, admit(gateway, conn.headers.get("authorization"), role)


def admit(gateway: Gateway, authorization: str | None, role: Role) -> Principal:
    """The caller of an ``Authorization`` header, charged to their tenant's rate limit, in a role that may."""
    principal = gateway.auth.authenticate(authorization)
    wait = gateway.limiter.take(principal.tenant)
    if wait > 0:
        raise RateLimitedError(wait)
    principal.require(role)
    return principal
