"""The delivery producer on a real broker: each record's offset is reported, and a failing report does not
stop the reports after it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from streams.admin import ensure_topics
from streams.delivery import DeliveryProducer
from streams.settings import Settings
from streams.topics import Catalog, Role


def test_offsets_are_reported_and_a_callback_that_raises_stops_nothing(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    topic = Catalog(settings).name(Role.RESULTS)
    producer = DeliveryProducer(settings)
    offsets: list[int] = []
    done = threading.Event()

    def broken(offset: int) -> None:
        raise RuntimeError("a bug in a caller's callback")

    def record(offset: int) -> None:
        offsets.append(offset)
        if len(offsets) == 2:
            done.set()

    try:
        producer.send(topic, b"k", b"1", 0, on_delivered=record)
        producer.send(topic, b"k", b"2", 0, on_delivered=broken)
        producer.send(topic, b"k", b"3", 0, on_delivered=record)
        assert done.wait(30)
        assert offsets == [0, 2]  # the offsets the records were written at, in order
    finally:
        producer.flush(10)
        producer.close()


def test_a_closed_producer_refuses_records_rather_than_queue_them_unreported(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    producer = DeliveryProducer(settings)
    producer.close()
    with pytest.raises(RuntimeError, match="closed"):
        producer.send(Catalog(settings).name(Role.RESULTS), b"k", b"v", 0, on_delivered=lambda offset: None)
