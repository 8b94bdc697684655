"""Work items for executors (``awe.tasks.<kind>``) and what comes back on ``awe.results``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.ai import AICall
from schemas.errors import ErrorInfo


class Task(BaseModel):
    """One attempt of one side-effecting node, for the executor of its kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    run_id: str
    tenant_id: str
    node_id: str
    kind: str
    attempt: int = Field(ge=1)
    params: dict[str, Any]
    timeout: float | None = None
    correlation_id: str | None = None


class TaskResult(BaseModel):
    """An executor's answer to one task: an output, or a structured error that says if a retry may help."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["TaskResult"] = "TaskResult"
    task_id: str
    run_id: str
    tenant_id: str
    node_id: str
    attempt: int = Field(ge=1)
    ok: bool
    output: Any = None
    error: ErrorInfo | None = None
    duration_ms: float = 0.0
    #: The answered model call behind this result (ai nodes), even when the answer failed the attempt.
    call: AICall | None = None


class TimerFired(BaseModel):
    """A durable timer of a run came due (retry backoff, attempt timeout, sleep, approval deadline)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["TimerFired"] = "TimerFired"
    run_id: str
    tenant_id: str
    timer_id: str
    fired_at: float


Result = Annotated[TaskResult | TimerFired, Field(discriminator="type")]
RESULT_ADAPTER: TypeAdapter[TaskResult | TimerFired] = TypeAdapter(Result)
