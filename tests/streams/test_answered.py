"""The resume point a task commit carries in its offset metadata, and what a new owner reads from it."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.acks import OutputStart
from streams.answered import output_starts, parse_resume, resume_metadata
from streams.producer import producer_config
from streams.settings import Settings
from streams.topics import Catalog, Role


def test_a_resume_point_survives_the_offset_metadata() -> None:
    assert parse_resume(resume_metadata(1234)) == 1234


def test_a_commit_without_a_resume_point_reads_as_none() -> None:
    # An empty metadata (the first owner, or an awe that wrote results in transactions), or someone else's.
    assert parse_resume(None) is None
    assert parse_resume("") is None
    assert parse_resume("results@x") is None
    assert parse_resume("42") is None


def _results(settings: Settings, *task_ids: str, partition: int = 0) -> None:
    producer = Producer(producer_config(settings))
    topic = Catalog(settings).name(Role.RESULTS)
    for task_id in task_ids:
        producer.produce(topic, key=b"r", value=orjson.dumps({"task_id": task_id, "run_id": "r"}), partition=partition)
    producer.produce(topic, key=b"r", value=orjson.dumps({"timer_id": "retry:a:1"}), partition=partition)
    assert producer.flush(10) == 0


def _tasks(settings: Settings, count: int, partition: int = 0) -> None:
    producer = Producer(producer_config(settings))
    for _ in range(count):
        producer.produce(Catalog(settings).tasks("http"), key=b"r", value=b"{}", partition=partition)
    assert producer.flush(10) == 0


def _starts(settings: Settings, commit: TopicPartition | None) -> OutputStart:
    catalog = Catalog(settings)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{settings.app_id}.exec"})
    try:
        if commit is not None:
            consumer.commit(offsets=[commit], asynchronous=False)
        starts = output_starts(
            settings, consumer, [TopicPartition(catalog.tasks("http"), 0)], catalog.name(Role.RESULTS)
        )
    finally:
        consumer.close()
    return starts[(catalog.tasks("http"), 0)]


def test_a_new_owner_finds_the_tasks_answered_past_the_resume_point(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    _tasks(settings, 4)
    _results(settings, "r:old:1")  # offsets 0 and 1 (and a fired timer): before the resume point
    _results(settings, "r:a:1", "r:b:1")  # offsets 2, 3 and the timer at 4
    start = _starts(settings, TopicPartition(Catalog(settings).tasks("http"), 0, 1, metadata=resume_metadata(2)))
    assert start.answered == {"r:a:1", "r:b:1"}
    assert (start.floor, start.records_end, start.end) == (2, 4, 5)


def test_nothing_is_read_without_a_resume_point_or_tasks_to_run_again(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    _tasks(settings, 2)
    _results(settings, "r:a:1")
    tasks = Catalog(settings).tasks("http")
    for commit in (None, TopicPartition(tasks, 0, 1), TopicPartition(tasks, 0, 2, metadata=resume_metadata(0))):
        start = _starts(settings, commit)
        assert (start.answered, start.floor, start.end) == (frozenset(), None, 2)
