"""Starting, signalling and cancelling runs by producing commands, and following a run to its end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.commands import CancelRun, SignalRun, StartRun, new_id
from schemas.envelope import Envelope
from schemas.state import RunState, evolve
from streams.codec import encode
from streams.producer import RecordProducer
from streams.reader import RunReader
from streams.settings import Settings
from streams.topics import Catalog, Role


class CommandClient:
    """Produces commands to ``awe.commands`` (keyed by run id) for one tenant."""

    def __init__(self, settings: Settings, tenant_id: str | None = None) -> None:
        self.settings = settings
        self.tenant_id = tenant_id or settings.tenant
        self.topic = Catalog(settings).name(Role.COMMANDS)
        self._producer = RecordProducer(settings)

    def start(
        self,
        workflow: str,
        inputs: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        run_id: str | None = None,
    ) -> StartRun:
        """Produce a StartRun and wait until the broker has it."""
        command = StartRun(
            run_id=run_id or new_id(), tenant_id=self.tenant_id, workflow=workflow, version=version, inputs=inputs or {}
        )
        self._send(command.run_id, encode(command))
        return command

    def signal(self, run_id: str, node: str, data: Any = None) -> SignalRun:
        """Produce a SignalRun for a node of a run."""
        command = SignalRun(run_id=run_id, tenant_id=self.tenant_id, node=node, data=data)
        self._send(run_id, encode(command))
        return command

    def cancel(self, run_id: str, reason: str | None = None) -> CancelRun:
        """Produce a CancelRun."""
        command = CancelRun(run_id=run_id, tenant_id=self.tenant_id, reason=reason)
        self._send(run_id, encode(command))
        return command

    def _send(self, run_id: str, value: bytes) -> None:
        self._producer.produce(self.topic, run_id, value)
        self._producer.flush()


def follow_run(
    settings: Settings,
    run_id: str,
    *,
    from_offset: int | None = None,
    timeout: float | None = None,
    on_event: Callable[[Envelope, RunState], None] | None = None,
) -> RunState:
    """Fold a run's events as they arrive until it ends or ``timeout`` passes; return the state reached."""
    state = RunState(run_id=run_id)
    with RunReader(settings) as reader:
        for envelope in reader.events(
            run_id, from_offset=from_offset, follow=True, timeout=timeout, until_terminal=True
        ):
            state = evolve(state, envelope)
            if on_event is not None:
                on_event(envelope, state)
    return state
