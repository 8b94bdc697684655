"""The task runner on its own: a task already answered is skipped, a dead consumer thread stops the worker, and
commits and resumes go to librdkafka as they should."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, TopicPartition

from agents.executors.base import Executor, Source
from agents.executors.runner import TaskRunner
from schemas.tasks import Task, TaskResult
from streams.acks import Commit
from streams.codec import decode, encode
from streams.delivery import DeliveryProducer
from streams.settings import Settings

# Nothing listens here: neither test reaches a broker.
SETTINGS = Settings(kafka_bootstrap="127.0.0.1:1")


class BrokenConsumer:
    """Stands in for the task consumer whose poll raises, as librdkafka does on a fatal error."""

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        pass

    def assignment(self) -> list[Any]:
        return []

    def poll(self, timeout: float) -> None:
        raise RuntimeError("fatal consumer error")


def _task(task_id: str) -> bytes:
    return encode(Task(task_id=task_id, run_id="r", tenant_id="acme", node_id="n", kind="http", attempt=1, params={}))


async def _echo(task: Task) -> str:
    return task.task_id


@pytest.mark.asyncio
async def test_a_task_whose_result_is_on_the_log_is_not_run_again() -> None:
    executor = Executor(SETTINGS, "http", _echo, concurrency=1)
    answered = frozenset({"r:a:1"})
    skipped = await executor.execute(Source("t", 0, 5, b"r", _task("r:a:1")), answered)
    ran = await executor.execute(Source("t", 0, 6, b"r", _task("r:b:1")), answered)
    assert skipped is None
    assert ran is not None and decode(ran.value, TaskResult).output == "r:b:1"


@pytest.mark.asyncio
async def test_a_consumer_thread_that_dies_reports_to_the_worker() -> None:
    died: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    results = DeliveryProducer(SETTINGS)
    runner = TaskRunner(SETTINGS, Executor(SETTINGS, "http", _echo, 1), results, on_fatal=died.set_result)
    runner.consumer.close()
    runner.consumer = BrokenConsumer()  # type: ignore[assignment]
    try:
        runner.start()
        err = await asyncio.wait_for(died, timeout=5)
        assert isinstance(err, RuntimeError) and "fatal consumer error" in str(err)
    finally:
        results.close()


class RecordingConsumer:
    """Stands in for the task consumer, keeping the offsets of each commit and whether it was asynchronous."""

    def __init__(self) -> None:
        self.commits: list[tuple[dict[int, int], bool]] = []

    def commit(self, *, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append(({tp.partition: tp.offset for tp in offsets}, asynchronous))


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    """A runner whose consumer a test replaces with its stand-in (its own is closed) and never starts."""
    results = DeliveryProducer(SETTINGS)
    runner = TaskRunner(SETTINGS, Executor(SETTINGS, "http", _echo, 1), results, on_fatal=lambda err: None)
    runner.consumer.close()
    yield runner
    results.close()


def test_one_asynchronous_commit_is_in_flight_at_a_time(runner: TaskRunner) -> None:
    # The group coordinator answers a connection's requests one at a time, and a heartbeat waits behind the
    # commits before it: a commit on every poll queued so many that the consumer's session timed out.
    consumer = runner.consumer = RecordingConsumer()  # type: ignore[assignment]
    runner._pending = {("t", 0): Commit(5, 0)}
    runner._commit_pending(asynchronous=True)
    runner._pending.update({("t", 0): Commit(7, 0), ("t", 1): Commit(2, 0)})
    runner._commit_pending(asynchronous=True)
    assert consumer.commits == [({0: 5}, True)]
    runner._on_commit(None, [])
    runner._commit_pending(asynchronous=True)
    runner._pending = {("t", 1): Commit(3, 0)}
    runner._commit_pending(asynchronous=False)  # a revocation commits what finished, whatever is in flight
    assert consumer.commits == [({0: 5}, True), ({0: 7, 1: 2}, True), ({1: 3}, False)]


class PausingConsumer:
    """Stands in for the task consumer, recording resumes and seeks; partition 1 has had nothing taken yet."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("t", 0), TopicPartition("t", 1)]

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("resume", sorted(tp.partition for tp in partitions)))

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition("t", 0, 42), TopicPartition("t", 1, OFFSET_INVALID)]

    def seek(self, partition: TopicPartition) -> None:
        self.calls.append(("seek", (partition.partition, partition.offset)))


def test_a_resume_restarts_the_fetch_where_each_partition_stands(runner: TaskRunner) -> None:
    # librdkafka fetched a resumed partition only when its broker thread next woke on its own: a saturated
    # executor idled up to 0.75 s after every resume. A seek to the same position restarts the fetch at once.
    consumer = runner.consumer = PausingConsumer()  # type: ignore[assignment]
    runner._resume()
    assert consumer.calls == [("resume", [0, 1]), ("seek", (0, 42))]
