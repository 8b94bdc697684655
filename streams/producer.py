"""The confluent-kafka producer used outside Faust agents (CLI, timers, gateway).

The partitioner is murmur2, the Java client's and aiokafka's: the orchestrator writes a run's events with
aiokafka, and a run's commands, results and events must land on the same partition number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.exceptions import ProduceError
from streams.settings import Settings

_UNASSIGNED = -1  # librdkafka's RD_KAFKA_PARTITION_UA: let the partitioner choose


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Producer settings: idempotent, acks=all, Java-compatible partitioning, small linger."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 2,
        "message.max.bytes": settings.record_max_bytes,
    }
    config.update(overrides)
    return config


class RecordProducer:
    """A thin, typed wrapper that raises ProduceError instead of losing a failed delivery silently."""

    def __init__(self, settings: Settings, *, on_error: Callable[[str], None] | None = None, **overrides: Any) -> None:
        self._producer = Producer(producer_config(settings, **overrides))
        self._errors: list[str] = []
        self._on_error = on_error
        #: The offset of the last record the broker acknowledged (known after ``flush``).
        self.last_offset: int | None = None

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.last_offset = msg.offset()
        else:
            if self._on_error is not None:
                # A long-lived producer that never flushes (token deltas) reports here, not by raising.
                self._on_error(str(err))
                return
            self._errors.append(str(err))

    def produce(self, topic: str, key: str | bytes | None, value: bytes, partition: int | None = None) -> None:
        """Queue one record (on ``partition`` if given, else by the key's hash); ``flush`` confirms delivery."""
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=key,
                    value=value,
                    partition=_UNASSIGNED if partition is None else partition,
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)

    def close(self) -> None:
        """Deliver what is queued and let the client go, while its broker is still there to say goodbye to."""
        self._producer.close()

    def flush(self, timeout: float = 15.0) -> None:
        """Wait for every queued record; raise ProduceError if any was not written."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise ProduceError(f"{remaining} records not delivered within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise ProduceError(f"{len(errors)} records failed: {errors[0]}", detail=errors)
