"""Retrying a broker call through the errors Kafka itself calls retriable (a new topic's leader moving in)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

T = TypeVar("T")

# librdkafka does not flag these as retriable, yet they only mean that a new partition's leader is not
# known to the broker that answered yet.
_TRANSIENT = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}
)


def retry_retriable(call: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.1) -> T:
    """Call until it succeeds, a non-retriable error is raised, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException as err:
            error = err.args[0] if err.args else None
            retriable = error is not None and (error.retriable() or error.code() in _TRANSIENT)
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(interval)
