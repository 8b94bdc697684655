"""The gateway's producer, served from the event loop, against the session's broker: every awaited record is
stored, a lone record is delivered without another request to poll for it, closing delivers what is
queued, and a second event loop is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer

from gateway.producer import AsyncProducer
from streams.settings import Settings
from streams.topics import Catalog, Role


def _stored(settings: Settings, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}check",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(300):
            for message in consumer.consume(500, timeout=0.1):
                if message.error() is None:
                    values.append(message.value() or b"")
            if len(values) >= expected:
                break
    finally:
        consumer.close()
    return values


@pytest.mark.asyncio
async def test_concurrent_and_lone_records_are_stored(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    topic = Catalog(settings).name(Role.COMMANDS)
    producer = AsyncProducer(settings)
    await asyncio.gather(*(producer.produce(topic, f"k{i}", f"v{i}".encode()) for i in range(500)))
    # Nothing else produces now: the lone record's delivery is found by the timer alone.
    await asyncio.wait_for(producer.produce(topic, "lone", b"lone"), timeout=10)
    await producer.close()
    values = await asyncio.to_thread(_stored, settings, topic, 501)
    assert sorted(values) == sorted([f"v{i}".encode() for i in range(500)] + [b"lone"])


@pytest.mark.asyncio
async def test_close_delivers_what_is_queued(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    topic = Catalog(settings).name(Role.COMMANDS)
    producer = AsyncProducer(settings)
    pending = [asyncio.ensure_future(producer.produce(topic, f"k{i}", b"queued")) for i in range(50)]
    await asyncio.sleep(0)  # each has handed its record to the producer
    await producer.close()
    await asyncio.wait_for(asyncio.gather(*pending), timeout=5)
    assert len(await asyncio.to_thread(_stored, settings, topic, 50)) == 50


def test_a_second_event_loop_is_refused(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    topic = Catalog(settings).name(Role.COMMANDS)
    producer = AsyncProducer(settings)
    asyncio.run(producer.produce(topic, "k", b"first"))
    with pytest.raises(RuntimeError, match="one event loop"):
        asyncio.run(producer.produce(topic, "k", b"second"))
