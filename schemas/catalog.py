"""Every model of the wire contract, and its JSON Schema document (what ``schemas/jsonschema/`` holds)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.ai import TokenDelta
from schemas.commands import COMMAND_ADAPTER, CancelRun, SignalRun, StartRun
from schemas.definition import WorkflowDefinition
from schemas.envelope import Envelope
from schemas.events import EVENT_TYPES
from schemas.state import RunState
from schemas.tasks import RESULT_ADAPTER, Task, TaskResult, TimerFired

_MODELS: dict[str, type[BaseModel]] = {
    "workflow-definition": WorkflowDefinition,
    "envelope": Envelope,
    "command.StartRun": StartRun,
    "command.CancelRun": CancelRun,
    "command.SignalRun": SignalRun,
    "task": Task,
    "result.TaskResult": TaskResult,
    "result.TimerFired": TimerFired,
    "run-state": RunState,
    "token-delta": TokenDelta,
    **{f"event.{name}": model for name, model in EVENT_TYPES.items()},
}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {"command": COMMAND_ADAPTER, "result": RESULT_ADAPTER}


def schema_documents() -> dict[str, dict[str, Any]]:
    """File stem to JSON Schema, for every model of the contract."""
    docs: dict[str, dict[str, Any]] = {name: model.model_json_schema() for name, model in _MODELS.items()}
    docs.update({name: adapter.json_schema() for name, adapter in _ADAPTERS.items()})
    return dict(sorted(docs.items()))
