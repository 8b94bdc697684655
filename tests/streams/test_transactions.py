"""Records and the input offsets they answer, committed together or not at all, on a real broker."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.settings import Settings
from streams.transactions import TransactionalWriter
from tests.harness import read_topic, unique_settings


def _topics(settings: Settings, *names: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(30)


def _member(settings: Settings, group: str, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        assert time.monotonic() < deadline, "the consumer was never assigned its partition"
        consumer.poll(0.1)
    return consumer


def test_a_commit_shows_its_records_and_moves_the_offset_and_a_fenced_one_shows_neither(
    kafka_bootstrap: str,
) -> None:
    settings = unique_settings(kafka_bootstrap)
    tasks, results = f"{settings.topic_prefix}tasks", f"{settings.topic_prefix}results"
    _topics(settings, tasks, results)
    group = f"{settings.app_id}.executor"
    member = _member(settings, group, tasks)
    writer = TransactionalWriter(settings, f"{group}-{uuid.uuid4().hex[:8]}")
    try:
        stale = member.consumer_group_metadata()
        assert writer.commit([(results, b"run-1", b"answer-1", 0)], [TopicPartition(tasks, 0, 5)], stale)
        assert read_topic(settings, results) == [(b"run-1", b"answer-1")]
        assert [tp.offset for tp in member.committed([TopicPartition(tasks, 0)], timeout=10)] == [5]

        # The member leaves, as a worker whose partitions were reassigned; its old generation is fenced.
        member.close()
        assert not writer.commit([(results, b"run-1", b"answer-2", 0)], [TopicPartition(tasks, 0, 9)], stale)
        assert read_topic(settings, results) == [(b"run-1", b"answer-1")]
        # The writer recovered from the abort and commits again for the group's current member.
        member = _member(settings, group, tasks)
        fresh = member.consumer_group_metadata()
        assert writer.commit([(results, b"run-1", b"answer-3", 0)], [TopicPartition(tasks, 0, 9)], fresh)
        assert read_topic(settings, results) == [(b"run-1", b"answer-1"), (b"run-1", b"answer-3")]
        assert [tp.offset for tp in member.committed([TopicPartition(tasks, 0)], timeout=10)] == [9]
    finally:
        writer.close()
        member.close()
