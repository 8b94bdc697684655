"""Subscriptions, and the fan-out of live batches to them on the event loop.

Every index is keyed by tenant first, so a subscription can only ever match its own tenant's runs,
whatever run id or workflow name it names. Dispatch never waits: each connection's queue takes the
message or the connection is closed as a slow consumer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson

from gateway.connection import CLOSE_HEARTBEAT, Connection, event_message
from gateway.fanout import Live, LiveEvent

HEARTBEAT_SLICES = 15

Key = tuple[str, ...]
"""("run", tenant, run_id) | ("workflow", tenant, name) | ("all", tenant)"""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One filter of one connection."""

    connection: Connection
    key: Key
    tokens: bool


class Hub:
    """The subscription indexes of one gateway process."""

    def __init__(self) -> None:
        self._index: dict[Key, dict[Connection, Subscription]] = {}
        # Each connection's keys, so dropping one costs its own subscriptions, not a walk of the index
        # (10,000 clients leaving at once walked it 10,000 times).
        self._keys: dict[Connection, set[Key]] = {}
        self.connections: set[Connection] = set()
        self._joined = 0
        self.delivered = 0

    def add(self, subscription: Subscription) -> None:
        """Start matching a subscription (replacing the connection's previous one with the same key)."""
        self._index.setdefault(subscription.key, {})[subscription.connection] = subscription
        self._keys.setdefault(subscription.connection, set()).add(subscription.key)

    def remove(self, connection: Connection, key: Key) -> bool:
        """Stop matching one of a connection's subscriptions; False if it had none with that key."""
        subs = self._index.get(key)
        if subs is None or subs.pop(connection, None) is None:
            return False
        if not subs:
            del self._index[key]
        keys = self._keys[connection]
        keys.discard(key)
        if not keys:
            del self._keys[connection]
        return True

    def drop(self, connection: Connection) -> None:
        """Forget a connection and every subscription it had."""
        self.connections.discard(connection)
        for key in list(self._keys.get(connection, ())):
            self.remove(connection, key)

    def _matching(self, tenant: str, run_id: str, workflow: str | None) -> list[Subscription]:
        found: list[Subscription] = []
        for key in (("run", tenant, run_id), ("all", tenant), ("workflow", tenant, workflow or "")):
            subs = self._index.get(key)
            if subs:
                found.extend(subs.values())
        return found

    def dispatch(self, batch: list[Live]) -> None:
        """Fan a batch out (on the loop; called soon after the consumer thread read it)."""
        for item in batch:
            if isinstance(item, LiveEvent):
                event = item.event
                subs = self._matching(event.tenant_id, event.run_id, item.workflow)
                if not subs:
                    continue
                message = event_message(event)  # encoded once for every subscriber
                for connection in {s.connection for s in subs}:
                    connection.deliver(event, message)
                    self.delivered += 1
            else:
                subs = self._matching(item.tenant_id, item.run_id, item.workflow)
                for connection in {s.connection for s in subs if s.tokens}:
                    connection.offer(item.message)
                    self.delivered += 1

    def join(self, connection: Connection) -> None:
        """Count a connection in (for the heartbeat and the metrics) and give it its turn to be pinged."""
        connection.heartbeat_slice = self._joined % HEARTBEAT_SLICES
        self._joined += 1
        self.connections.add(connection)

    async def heartbeat(self, interval: float) -> None:
        """Ping every connection every ``interval`` seconds; close those that missed two pongs in a row.

        The connections are pinged one slice at a time across the interval: pinging 10,000 at once queued
        10,000 messages (and brought 10,000 pongs back) in one go, delaying every event behind them."""
        turn = 0
        while True:
            await asyncio.sleep(interval / HEARTBEAT_SLICES)
            turn = (turn + 1) % HEARTBEAT_SLICES
            ping = orjson.dumps({"type": "ping", "time": time.time()}).decode()
            for connection in [c for c in self.connections if c.heartbeat_slice == turn]:
                if connection.missed_pongs >= 2:
                    connection.close(CLOSE_HEARTBEAT, "heartbeat_timeout")
                    continue
                connection.missed_pongs += 1
                connection.offer(ping)
