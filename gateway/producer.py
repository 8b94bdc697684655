"""Producing commands from the event loop: a confluent-kafka producer whose deliveries resolve asyncio
futures, so a request waits for the broker without blocking the loop.

The producer is served from the loop's own thread: ``poll(0)`` after each produce (under load, that
finds the deliveries of earlier requests) and on a 1 ms timer while records are in flight. A thread of
its own, blocked in ``poll``, had to take the GIL from the busy loop for every delivery callback; on two
cores that cost the loop a fifth of its time per request (docs/gateway.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.exceptions import ProduceError
from streams.producer import producer_config
from streams.settings import Settings

#: How soon a delivery is noticed when no other request comes along to poll for it.
SERVE_INTERVAL_S = 0.001

_Settled = list[tuple[asyncio.Future[None], KafkaError | None]]


class AsyncProducer:
    """``await produce(...)`` returns once the broker has stored the record (acks=all, idempotent).

    One instance serves the one event loop that first produces through it."""

    def __init__(self, settings: Settings) -> None:
        # A short linger batches the records of concurrent requests into one produce request.
        self._producer = Producer(producer_config(settings, **{"linger.ms": settings.gateway_linger_ms}))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Filled by the delivery callbacks, which run inside ``poll`` or ``flush``.
        self._settled: _Settled = []

    async def produce(self, topic: str, key: str, value: bytes) -> None:
        """Write one record; raise ProduceError when the broker does not take it."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("an AsyncProducer serves the one event loop that first used it")
        done: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            self._settled.append((done, err))

        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: serve deliveries, give the broker a moment
                self._serve()
                await asyncio.sleep(0.01)
        self._serve()
        await done

    def _serve(self) -> None:
        """Run the delivery callbacks that are due, settle their futures, and keep the timer while records
        are in flight."""
        self._producer.poll(0)
        if self._settled:
            batch, self._settled = self._settled, []
            _settle(batch)
        if self._timer is None and len(self._producer) and self._loop is not None:
            self._timer = self._loop.call_later(SERVE_INTERVAL_S, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._serve()

    async def close(self, flush_timeout_s: float = 10.0) -> None:
        """Deliver what is queued, waiting in a thread (call it once nothing produces any more)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.get_running_loop().run_in_executor(None, self._producer.flush, flush_timeout_s)
        batch, self._settled = self._settled, []
        _settle(batch)

    def broker_answers(self, timeout: float = 2.0) -> bool:
        """Whether the cluster's metadata can be fetched right now (for ``/readyz``)."""
        try:
            meta: Any = self._producer.list_topics(timeout=timeout)
        except Exception:  # any failure to reach the broker means "not ready"; the reason is not needed
            return False
        return bool(meta.brokers)


def _settle(batch: _Settled) -> None:
    for future, err in batch:
        if future.done():
            continue
        if err is None:
            future.set_result(None)
        else:
            future.set_exception(ProduceError(f"command not stored: {err}", detail=str(err)))
