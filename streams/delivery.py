"""A producer that tells its caller when each record is durable, from a thread of its own.

For at-least-once consumers: a record's input offset may be committed only once its output is written.
librdkafka reports deliveries from ``poll``; a thread polls, so a report is never held up by whoever
produces. A failed delivery (librdkafka has already retried it for ``message.timeout.ms``) is sent again
rather than dropped: its input stays uncommitted until it is written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.exceptions import ProduceError
from streams.producer import producer_config
from streams.settings import Settings

log = logging.getLogger("awe.delivery")

#: How often the delivery thread wakes when nothing is reported.
POLL_S = 0.2


class DeliveryProducer:
    """``send`` a record and have ``on_delivered`` called with its offset once the broker has it (acks=all)."""

    def __init__(self, settings: Settings, *, on_error: Callable[[str], None] | None = None, **overrides: Any) -> None:
        self._producer = Producer(producer_config(settings, **overrides))
        self._on_error = on_error
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="awe-delivery", daemon=True)
        self._thread.start()

    def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int, on_delivered: Callable[[int], None]
    ) -> None:
        """Queue one record for ``topic``/``partition``; ``on_delivered`` runs on the delivery thread."""

        def report(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                on_delivered(msg.offset() or 0)
                return
            log.warning("a record for %s/%s was not delivered (%s); sending it again", topic, partition, err)
            if self._on_error is not None:
                self._on_error(str(err))
            if not self._stopping.is_set():
                self.send(topic, key, value, partition, on_delivered)

        while True:
            try:
                self._producer.produce(topic, key=key, value=value, partition=partition, on_delivery=report)
                return
            except BufferError:  # the local queue is full: wait for deliveries to make room
                self._producer.poll(0.05)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                self._producer.poll(POLL_S)
            except Exception:
                # Raised by a caller's on_delivered: the other reports stay queued for the next poll, and a
                # thread that died here would leave every later record without its report.
                log.exception("a delivery report's callback failed")

    def flush(self, timeout: float) -> None:
        """Wait until every queued record is delivered; raise ProduceError if some are not in time."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise ProduceError(f"{remaining} records not delivered within {timeout}s")

    def close(self) -> None:
        """Stop the delivery thread and let the client go; flush first, or undelivered records get no report."""
        self._stopping.set()
        self._thread.join()
        # Not left to the garbage collector: a callback's exception, logged with its traceback, keeps the
        # thread's frame and so this client alive, and it went on reconnecting after its broker had stopped.
        self._producer.close()
