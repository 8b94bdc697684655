"""Starting, signalling and cancelling runs by producing commands, and following a run to its end."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from schemas.commands import CancelRun, ForkOf, NoteFork, SignalRun, StartRun, new_id
from schemas.definition import WorkflowDefinition
from schemas.envelope import Envelope
from schemas.state import RunState, evolve
from streams.codec import encode
from streams.producer import RecordProducer, producer_config
from streams.reader import RunReader
from streams.settings import Settings
from streams.topics import Catalog, Role


class CommandClient:
    """Produces commands to ``awe.commands`` (keyed by run id) for one tenant."""

    def __init__(self, settings: Settings, tenant_id: str | None = None, principal: str | None = None) -> None:
        self.settings = settings
        self.tenant_id = tenant_id or settings.tenant
        self.principal = principal or settings.principal or _os_user()
        self.topic = Catalog(settings).name(Role.COMMANDS)
        self._producer = RecordProducer(settings)

    def close(self) -> None:
        """Release the producer (every command was already confirmed by the broker)."""
        self._producer.close()

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
            run_id=run_id or new_id(),
            tenant_id=self.tenant_id,
            workflow=workflow,
            version=version,
            inputs=inputs or {},
            principal=self.principal,
        )
        self._send(command.run_id, encode(command))
        return command

    def signal(self, run_id: str, node: str, data: Any = None) -> SignalRun:
        """Produce a SignalRun for a node of a run."""
        command = SignalRun(run_id=run_id, tenant_id=self.tenant_id, node=node, data=data, principal=self.principal)
        self._send(run_id, encode(command))
        return command

    def cancel(self, run_id: str, reason: str | None = None) -> CancelRun:
        """Produce a CancelRun."""
        command = CancelRun(run_id=run_id, tenant_id=self.tenant_id, reason=reason, principal=self.principal)
        self._send(run_id, encode(command))
        return command

    def fork(
        self,
        parent: RunState,
        *,
        from_node: str,
        definition: WorkflowDefinition,
        inputs: dict[str, Any],
        reused: dict[str, Any],
        run_id: str | None = None,
    ) -> StartRun:
        """Start a fork of ``parent`` and note it on the parent's log, both in one Kafka transaction, so
        neither run's log can mention the other without the other existing."""
        fork = ForkOf(parent_run_id=parent.run_id, from_node=from_node, reused=reused)
        command = StartRun(
            run_id=run_id or new_id(),
            tenant_id=self.tenant_id,
            workflow=definition.name,
            version=parent.version,
            inputs=inputs,
            definition=definition,
            fork=fork,
        )
        note = NoteFork(
            run_id=parent.run_id, tenant_id=self.tenant_id, child_run_id=command.run_id, from_node=from_node
        )
        producer = Producer(producer_config(self.settings, **{"transactional.id": f"awe-fork-{new_id()}"}))
        producer.init_transactions(15)
        producer.begin_transaction()
        producer.produce(self.topic, key=command.run_id, value=encode(command))
        producer.produce(self.topic, key=parent.run_id, value=encode(note))
        producer.commit_transaction(15)
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


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return None
