"""Idempotent run starts, honoured across any number of gateway processes without shared storage.

The run id is derived from the tenant and the ``Idempotency-Key``: every gateway computes the same id, and
the orchestrator ignores a StartRun for a run that already started, so a retried request starts nothing
new wherever it lands. A retry with a different body is told apart from a true retry by comparing it with
what the run's ``RunStarted`` recorded (workflow, version, inputs); before that event has been read, with
what this process itself sent. See docs/gateway.md for the one window this leaves.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from gateway.directory import IDEMPOTENT_PREFIX, RecordedStart
from gateway.exceptions import ConflictError

RECENT_KEPT = 100_000


def run_id_for(tenant: str, key: str) -> str:
    """The run id of a tenant's Idempotency-Key: the same in every gateway process."""
    digest = hashlib.sha256(f"{tenant}\x00{key}".encode()).hexdigest()[:32]
    return f"{IDEMPOTENT_PREFIX}{digest}"


@dataclass(frozen=True, slots=True)
class Start:
    """A run start this process sent: whose it is and what it asked for."""

    tenant: str
    workflow: str
    version: int
    #: None for a start without an Idempotency-Key: its run id is fresh, so nothing can retry it.
    inputs_digest: str | None


class RecentStarts:
    """The starts this process sent lately, so it can answer for them before their RunStarted is read."""

    def __init__(self, kept: int = RECENT_KEPT) -> None:
        self._kept = kept
        self._starts: OrderedDict[str, Start] = OrderedDict()

    def remember(self, run_id: str, start: Start) -> None:
        """Note a start that the broker has stored."""
        self._starts[run_id] = start
        if len(self._starts) > self._kept:
            self._starts.popitem(last=False)

    def get(self, run_id: str, tenant: str) -> Start | None:
        """The start of a run of ``tenant`` sent from here, if any."""
        start = self._starts.get(run_id)
        return start if start is not None and start.tenant == tenant else None


def is_retry(asked: Start, recorded: RecordedStart | None, sent: Start | None) -> bool:
    """Whether a request with a known key asks for the run it started (True), or for nothing known yet
    (False); ConflictError when it asks for a different one."""
    if recorded is not None:
        if recorded.rejected:
            return True  # the first body was refused; the key stays spent on it
        same = (
            recorded.workflow == asked.workflow
            and recorded.version == asked.version
            and recorded.inputs_digest == asked.inputs_digest
        )
    elif sent is not None:
        same = sent == asked
    else:
        return False
    if not same:
        raise ConflictError(
            "this Idempotency-Key was used with a different body",
            code="idempotency_conflict",
            detail={"recorded": {"workflow": recorded.workflow, "version": recorded.version} if recorded else None},
        )
    return True
