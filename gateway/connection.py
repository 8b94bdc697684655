"""One WebSocket client: its bounded send queue, the last seq it was sent of each run (so nothing is sent
twice), and what is held back while its history is being read.

Live messages are offered without waiting: when the queue is full the client is too slow, and it is closed
with reason ``slow_consumer`` rather than allowed to hold up the fan-out to every other client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.auth import Principal
from gateway.history import RawEvent
from gateway.ratelimit import TokenBucket

CLOSE_SLOW_CONSUMER = 4008
CLOSE_HEARTBEAT = 4000
CLOSE_TOO_LARGE = 1009
CLOSE_GOING_AWAY = 1001

TERMINAL = frozenset({"RunSucceeded", "RunFailed", "RunCancelled", "RunRejected"})

ENDED_KEPT = 10_000

Closer = Callable[[int, str], Awaitable[None]]


def event_message(event: RawEvent) -> str:
    """The message a client receives for an event: the stored envelope spliced in as it is, with where it
    is stored (clients resume all-runs and workflow subscriptions from those offsets)."""
    return f'{{"type":"event","partition":{event.partition},"offset":{event.offset},"event":{event.value.decode()}}}'


@dataclass(eq=False)
class Connection:
    """The per-connection state the hub and the protocol handler share."""

    principal: Principal
    queue_size: int
    limiter: TokenBucket
    closer: Closer
    queue: asyncio.Queue[str] = field(init=False)
    last_sent: dict[str, int] = field(default_factory=dict)
    ended: dict[str, None] = field(default_factory=dict)
    #: While > 0, a history read is running: live events are held, then sent after the history.
    holding: int = 0
    held: list[tuple[RawEvent, str]] = field(default_factory=list)
    missed_pongs: int = 0
    heartbeat_slice: int = 0
    closing: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.queue_size)

    def offer(self, message: str) -> None:
        """Queue a message without waiting; a full queue closes the connection as a slow consumer."""
        if self.closing:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.close(CLOSE_SLOW_CONSUMER, "slow_consumer")

    def deliver(self, event: RawEvent, message: str) -> None:
        """A live event: held during a history read, else sent unless this run's seq was sent already."""
        if self.holding:
            if len(self.held) >= self.queue_size:
                self.close(CLOSE_SLOW_CONSUMER, "slow_consumer")
            else:
                self.held.append((event, message))
            return
        self._send_event(event, message)

    async def send_history(self, events: list[RawEvent]) -> None:
        """Send events read from the log, then what was held meanwhile, waiting for room: a long history
        is not a slow client. Live events stay held until the last held one is queued."""
        for event in events:
            await self._put(event, event_message(event))
        while self.held:
            event, message = self.held.pop(0)
            await self._put(event, message)

    async def _put(self, event: RawEvent, message: str) -> None:
        if not self.closing and event.seq > self.last_sent.get(event.run_id, 0):
            self._note(event)
            await self.queue.put(message)

    def release(self) -> None:
        """A history read ended (sent or failed): live events flow again."""
        self.holding -= 1
        if self.holding == 0 and self.held:
            held, self.held = self.held, []
            for event, message in held:
                self._send_event(event, message)

    def _send_event(self, event: RawEvent, message: str) -> None:
        if event.seq > self.last_sent.get(event.run_id, 0):
            self._note(event)
            self.offer(message)

    def _note(self, event: RawEvent) -> None:
        self.last_sent[event.run_id] = event.seq
        if event.type in TERMINAL:
            # Runs that ended are forgotten oldest first, so an all-runs subscriber's memory stays bounded;
            # a duplicate can only come from a history read that overlaps live events, moments apart.
            self.ended[event.run_id] = None
            if len(self.ended) > ENDED_KEPT:
                oldest = next(iter(self.ended))
                del self.ended[oldest]
                self.last_sent.pop(oldest, None)

    def close(self, code: int, reason: str) -> None:
        """Close the connection (once) from outside its own tasks."""
        if self.closing:
            return
        self.closing = True
        self.spawn(self.closer(code, reason))

    def spawn(self, work: Awaitable[None]) -> None:
        """Run work in a task owned by this connection (cancelled when it ends)."""

        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cancel_tasks(self) -> None:
        """Cancel and await every task the connection started."""
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
