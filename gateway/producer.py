"""Producing commands from the event loop: a confluent-kafka producer whose deliveries resolve asyncio
futures, served by one polling thread, so a request waits for the broker without blocking the loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.exceptions import ProduceError
from streams.producer import producer_config
from streams.settings import Settings


class AsyncProducer:
    """``await produce(...)`` returns once the broker has stored the record (acks=all, idempotent)."""

    def __init__(self, settings: Settings) -> None:
        # A short linger batches the records of concurrent requests into one produce request.
        self._producer = Producer(producer_config(settings, **{"linger.ms": 5}))
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="awe-gateway-producer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def produce(self, topic: str, key: str, value: bytes) -> None:
        """Write one record; raise ProduceError when the broker does not take it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, done, err)

        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                await asyncio.sleep(0.01)  # the local queue is full: let the poller drain it
        await done

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then stop the polling thread."""
        self._producer.flush(timeout)
        self._stop.set()
        self._poller.join(timeout)

    def broker_answers(self, timeout: float = 2.0) -> bool:
        """Whether the cluster's metadata can be fetched right now (for ``/readyz``)."""
        try:
            meta: Any = self._producer.list_topics(timeout=timeout)
        except Exception:  # any failure to reach the broker means "not ready"; the reason is not needed
            return False
        return bool(meta.brokers)


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(ProduceError(f"command not stored: {err}", detail=str(err)))
