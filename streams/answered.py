"""Which tasks already have a result: read when a task partition changes hands.

An executor's results are written plainly (visible as soon as they are durable) and its task offsets are
committed after them, with a resume point (``streams/acks.py``). A new owner of a task partition reads the
results partition of the same number from that point, and skips the tasks answered there, so a task whose
result is on the log (an answered AI call) is not carried out a second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson
from confluent_kafka import Consumer, TopicPartition

from streams.acks import OutputStart
from streams.consuming import BOUNDED_READ, assign, next_batch
from streams.retry import retry_retriable
from streams.settings import Settings

log = logging.getLogger("awe.executor")

#: How long a new owner reads results at an assignment before it gives up and runs the rest again; the
#: consumer does not poll meanwhile, and librdkafka leaves the group after ``max.poll.interval.ms`` (300 s).
SCAN_TIMEOUT_S = 30.0

#: Offset metadata of a commit: the resume point of the results, as text (what Kafka keeps beside offsets).
RESUME_PREFIX = "results@"


def resume_metadata(resume: int) -> str:
    """The metadata to commit with a task offset."""
    return f"{RESUME_PREFIX}{resume}"


def parse_resume(metadata: str | None) -> int | None:
    """The resume point in a commit's metadata; ``None`` when there is none (no commit yet, or an older awe's)."""
    if not metadata or not metadata.startswith(RESUME_PREFIX):
        return None
    try:
        return int(metadata[len(RESUME_PREFIX) :])
    except ValueError:
        return None


def output_starts(
    settings: Settings, consumer: Consumer, tasks: Iterable[TopicPartition], results_topic: str
) -> dict[tuple[str, int], OutputStart]:
    """For each newly assigned task partition: where the results stand and which tasks are answered.

    ``consumer`` is the task consumer, whose group's commits hold the resume points.
    """
    tasks = list(tasks)
    if not tasks:
        return {}
    committed = retry_retriable(lambda: consumer.committed(tasks, timeout=10))
    reader = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.app_id}.answered",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 20,
            "max.partition.fetch.bytes": settings.record_max_bytes,
            **BOUNDED_READ,
        }
    )
    deadline = time.monotonic() + SCAN_TIMEOUT_S
    try:
        starts: dict[tuple[str, int], OutputStart] = {}
        for tp in committed:
            results_end = _end(reader, TopicPartition(results_topic, tp.partition))
            floor = parse_resume(tp.metadata)
            tasks_end = _end(reader, TopicPartition(tp.topic, tp.partition))
            if tp.offset < 0:
                first = _watermarks(reader, TopicPartition(tp.topic, tp.partition))[0]
                starts[(tp.topic, tp.partition)] = OutputStart(end=results_end, first=first)
                continue
            if floor is None or tp.offset >= tasks_end or floor >= results_end:
                starts[(tp.topic, tp.partition)] = OutputStart(end=results_end)
                continue
            answered = _task_ids(reader, TopicPartition(results_topic, tp.partition, floor), results_end, deadline)
            starts[(tp.topic, tp.partition)] = OutputStart(
                end=results_end, floor=floor, records_end=tasks_end, answered=answered
            )
        return starts
    finally:
        reader.close()


def _end(consumer: Consumer, tp: TopicPartition) -> int:
    return _watermarks(consumer, tp)[1]


def _watermarks(consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
    low, high = retry_retriable(lambda: consumer.get_watermark_offsets(tp, timeout=10, cached=False))
    return int(low), int(high)


def _task_ids(consumer: Consumer, start: TopicPartition, end: int, deadline: float) -> frozenset[str]:
    assign(consumer, [start])
    found: set[str] = set()
    position = start.offset
    while position < end:
        if time.monotonic() > deadline:
            # What was not read is run again: a side effect may repeat, as it would under at-least-once.
            log.warning("results of %s/%s read up to %s of %s only", start.topic, start.partition, position, end)
            break
        for message in next_batch(consumer, 1024, 1.0):
            if message.error() is not None:
                continue  # the end-of-partition event: the position below says whether the end is reached
            try:
                task_id = orjson.loads(message.value() or b"null").get("task_id")
            except (orjson.JSONDecodeError, AttributeError):
                continue  # not a result (a fired timer has no task id; a bad record is the orchestrator's)
            if isinstance(task_id, str):
                found.add(task_id)
        (now,) = consumer.position([TopicPartition(start.topic, start.partition)])
        position = max(position, now.offset)
    consumer.unassign()
    return frozenset(found)
