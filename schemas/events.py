"""The event types of ``awe.events``: one payload model per type, registered by name.

Every payload type is at ``schema_version`` 1 in this release; :mod:`schemas.upcasting` says how a type
moves to version 2 without stranding the events already written.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.ai import AICall
from schemas.definition import WorkflowDefinition
from schemas.errors import ErrorInfo
from schemas.exceptions import Problem


def _is_none(value: Any) -> bool:
    # Fields added after version 1 are left out when unset, so events that do not use them read as before.
    return value is None


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunStarted(_Payload):
    """The run began; it carries the definition it runs, so the log alone explains the run."""

    workflow: str
    version: int
    definition: WorkflowDefinition
    inputs: dict[str, Any]
    #: For a fork: the run it was forked from and the node it runs again from (absent otherwise).
    parent_run_id: str | None = Field(default=None, exclude_if=_is_none)
    forked_from_node: str | None = Field(default=None, exclude_if=_is_none)


class RunRejected(_Payload):
    """The start command could not begin a run (unknown workflow, inputs that do not fit, bad command)."""

    code: str
    message: str
    problems: list[Problem] = Field(default_factory=list)


class NodeScheduled(_Payload):
    """An attempt of a side-effecting node was handed to its executor."""

    node_id: str
    kind: str
    attempt: int
    task_id: str
    deadline: float | None = None


class NodeSucceeded(_Payload):
    """A node ended with an output."""

    node_id: str
    attempt: int
    output: Any = None
    duration_ms: float | None = None
    #: Set when a fork took this output from its parent's log instead of running the node (attempt 0).
    reused_from: str | None = Field(default=None, exclude_if=_is_none)


class AICallRecorded(_Payload, AICall):
    """A model answered an attempt of an ``ai`` node: recorded before the run moves on, so a restart or a
    replay uses this answer and never pays for the call again."""

    node_id: str
    attempt: int
    workflow: str | None = None


class NodeFailed(_Payload):
    """A node ended in failure: no attempt left, or an error that retrying cannot fix."""

    node_id: str
    attempt: int
    error: ErrorInfo


class NodeRetrying(_Payload):
    """An attempt failed with a retryable error; the next one starts at ``retry_at`` (epoch seconds)."""

    node_id: str
    attempt: int
    error: ErrorInfo
    retry_at: float


class NodeSkipped(_Payload):
    """A node will not run: its ``when`` was false, or a dependency it needed did not succeed."""

    node_id: str
    reason: str


class RunWaiting(_Payload):
    """A node waits for time to pass (sleep) or for a signal (approval), until ``until`` if set."""

    node_id: str
    reason: Literal["sleep", "approval"]
    until: float | None = None


class SignalReceived(_Payload):
    """A signal for a node was accepted (it is applied when the node waits for it)."""

    node_id: str
    data: Any = None
    command_id: str


class RunSucceeded(_Payload):
    """Every node ended and the outputs were rendered."""

    outputs: dict[str, Any] = Field(default_factory=dict)


class RunFailed(_Payload):
    """The run failed; outstanding tasks are abandoned."""

    node_id: str | None = None
    error: ErrorInfo


class RunForked(_Payload):
    """A fork of this run started: the child run and the node it runs again from."""

    child_run_id: str
    from_node: str
    command_id: str


class RunCancelled(_Payload):
    """The run was cancelled on request; late results are ignored."""

    reason: str | None = None


EVENT_TYPES: dict[str, type[_Payload]] = {
    cls.__name__: cls
    for cls in (
        RunStarted,
        RunRejected,
        NodeScheduled,
        NodeSucceeded,
        AICallRecorded,
        NodeFailed,
        NodeRetrying,
        NodeSkipped,
        RunWaiting,
        SignalReceived,
        RunSucceeded,
        RunFailed,
        RunCancelled,
        RunForked,
    )
}

Payload = _Payload
