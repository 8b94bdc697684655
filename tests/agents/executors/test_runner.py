"""The task runner on its own: a task already answered is skipped, and a dead consumer thread stops the worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents.executors.base import Executor, Source
from agents.executors.runner import TaskRunner
from schemas.tasks import Task, TaskResult
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
