"""An executor: run a task of one node kind with its handler and make the result record for ``awe.results``.

Consuming the tasks and committing their offsets is the runner's part (``agents/executors/runner.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agents import metrics
from agents.exceptions import ExecutionError
from agents.metrics import DLQ_RECORDS, NODE_DURATION
from schemas.ai import AICall
from schemas.errors import ErrorInfo
from schemas.tasks import Task, TaskResult
from streams.codec import decode, encode
from streams.dlq import DeadLetter, describe_validation_error
from streams.settings import Settings
from streams.topics import Catalog, Role

Handler = Callable[[Task], Awaitable[Any]]

#: Bytes kept free in a record for what surrounds a node's output (ids, times, the AI call's metadata).
ENVELOPE_ROOM = 64 << 10


@dataclass(frozen=True, slots=True)
class Source:
    """Where a task record was read, and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Record:
    """A record for an executor to send."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler returns when more than the node's output must reach the log (an answered AI call)."""

    output: Any
    call: AICall | None = None


log = logging.getLogger("awe.executor")


class Executor:
    """Turns one task record of a node kind into the record to send: its result, or a dead letter."""

    def __init__(self, settings: Settings, kind: str, handler: Handler, concurrency: int) -> None:
        catalog = Catalog(settings)
        self.kind = kind
        self.handler = handler
        self.concurrency = concurrency
        self.topic = catalog.tasks(kind)
        self.results = catalog.name(Role.RESULTS)
        self.dlq = catalog.name(Role.DLQ)
        # Room for the envelope around the output in the NodeSucceeded event that repeats it.
        self.result_max_bytes = settings.record_max_bytes - ENVELOPE_ROOM

    async def execute(self, source: Source, answered: Container[str] = frozenset()) -> Record | None:
        """Run the task; return its result, or a dead letter for a record that is not a task.

        ``None`` for a task in ``answered``: its result is on the log already, so it is not run again.
        """
        try:
            task = decode(source.value, Task)
        except ValidationError as err:
            letter = DeadLetter.of(
                code="schema_mismatch",
                reason=f"not a valid task: {describe_validation_error(err.errors())}",
                topic=source.topic,
                partition=source.partition,
                offset=source.offset,
                value=source.value,
            )
            if metrics.ENABLED:
                DLQ_RECORDS.labels(f"executor.{self.kind}", "schema_mismatch").inc()
            return Record(self.dlq, source.key, encode(letter), 0)
        if task.task_id in answered:
            return None
        started = time.perf_counter()
        try:
            output = await self.handler(task)
            if isinstance(output, Outcome):
                result = _result(task, started, ok=True, output=output.output, call=output.call)
            else:
                result = _result(task, started, ok=True, output=output)
        except ExecutionError as err:
            error = ErrorInfo(
                code=err.code,
                message=err.message,
                retryable=err.retryable,
                retry_after=err.retry_after,
                detail=err.detail,
            )
            result = _result(task, started, ok=False, error=error, call=err.call)
        except Exception as err:  # a bug in a handler fails the node, never the worker
            log.exception("executor %s crashed on task %s", self.kind, task.task_id)
            error = ErrorInfo(code="executor_error", message=f"{type(err).__name__}: {err}", retryable=False)
            result = _result(task, started, ok=False, error=error)
        record = encode(result)
        if len(record) > self.result_max_bytes:
            result, record = self._too_large(task, started, len(record))
        if metrics.ENABLED:
            NODE_DURATION.labels(self.kind, "ok" if result.ok else "error").observe(result.duration_ms / 1000)
        # A run's results go to the partition of its tasks, which is the partition of its commands.
        return Record(self.results, task.run_id.encode(), record, source.partition)

    def _too_large(self, task: Task, started: float, size: int) -> tuple[TaskResult, bytes]:
        # Sent as it is, the record would be refused by the producer or the broker, and the task redelivered
        # and run again forever; the same input gives the same output, so this fails the node for good.
        error = ErrorInfo(
            code="output_too_large",
            message=f"the {self.kind} node's result is {size:,} bytes, over the {self.result_max_bytes:,} a record "
            "may hold (raise AWE_RECORD_MAX_BYTES, and the run topics' max.message.bytes, to allow it)",
            retryable=False,
            detail={"result_bytes": size, "limit_bytes": self.result_max_bytes},
        )
        result = _result(task, started, ok=False, error=error)
        return result, encode(result)


def _result(
    task: Task,
    started: float,
    *,
    ok: bool,
    output: Any = None,
    error: ErrorInfo | None = None,
    call: AICall | None = None,
) -> TaskResult:
    return TaskResult(
        task_id=task.task_id,
        run_id=task.run_id,
        tenant_id=task.tenant_id,
        node_id=task.node_id,
        attempt=task.attempt,
        ok=ok,
        output=output,
        error=error,
        duration_ms=(time.perf_counter() - started) * 1000,
        call=call,
    )
