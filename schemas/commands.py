"""Commands on ``awe.commands`` (key: run id): what users, the gateway, the CLI or Kafka Connect ask for."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.definition import WorkflowDefinition


def new_id() -> str:
    """A fresh random id for runs and commands (only ever drawn at the edges, never in ``decide``): 32 hex
    digits of the OS's randomness, as a UUID4's hex without the cost of building a UUID (a quarter of it)."""
    return secrets.token_hex(16)


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str = Field(min_length=1, max_length=200)
    tenant_id: str = Field(default="default", min_length=1, max_length=100)
    command_id: str = Field(default_factory=new_id)
    correlation_id: str | None = None
    #: Who asked, when known: the CLI's user (``AWE_PRINCIPAL``), the gateway's authenticated caller.
    principal: str | None = Field(default=None, max_length=200)


class ForkOf(BaseModel):
    """Where a forked run comes from: its parent, the node it runs again from, and the parent's recorded
    outputs of the nodes it reuses instead of running them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    parent_run_id: str = Field(min_length=1, max_length=200)
    from_node: str
    reused: dict[str, Any] = Field(default_factory=dict)


class StartRun(_Command):
    """Start a run of a registered workflow; ``version`` defaults to the newest one.

    A fork (``awe fork``) carries ``fork`` and the definition it runs (the parent's, with any changes),
    which takes the place of the registered one.
    """

    type: Literal["StartRun"] = "StartRun"
    workflow: str
    version: int | None = Field(default=None, ge=1)
    inputs: dict[str, Any] = Field(default_factory=dict)
    definition: WorkflowDefinition | None = None
    fork: ForkOf | None = None


class CancelRun(_Command):
    """Cancel a run: no new tasks, late results ignored, ``RunCancelled`` recorded."""

    type: Literal["CancelRun"] = "CancelRun"
    reason: str | None = None


class SignalRun(_Command):
    """Deliver a signal to a node of a run (an approval's answer, say ``{"approve": true}``)."""

    type: Literal["SignalRun"] = "SignalRun"
    node: str
    data: Any = None


class NoteFork(_Command):
    """Record on a run's log that a fork of it started (sent with the fork's StartRun, atomically)."""

    type: Literal["NoteFork"] = "NoteFork"
    child_run_id: str = Field(min_length=1, max_length=200)
    from_node: str


Command = Annotated[StartRun | CancelRun | SignalRun | NoteFork, Field(discriminator="type")]
COMMAND_ADAPTER: TypeAdapter[StartRun | CancelRun | SignalRun | NoteFork] = TypeAdapter(Command)
