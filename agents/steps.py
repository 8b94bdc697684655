"""One input record of the orchestrator, turned into the records it writes: the part both runtimes share.

The orchestrator reads ``awe.commands`` and ``awe.results`` and, for each record, writes the run's events,
its tasks and its new state (the runs changelog), or a rejection, or a dead letter. What to write is decided
here, with no Kafka client in sight; the Faust agent (``agents/orchestrator.py``) and the librdkafka loop
(``agents/loop.py``) only read records, hand them over, and write what comes back in their transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from agents import metrics
from agents.decide import decide, reject
from agents.exceptions import InvalidRecordError
from agents.inbound import parse_record
from agents.messages import Decision, Inbound, Message
from agents.metrics import DLQ_RECORDS, observe_decision
from agents.timers import TimerWheel
from schemas.commands import StartRun
from schemas.state import RunState
from streams.app import loaded_state, stored_state
from streams.codec import encode
from streams.dlq import DeadLetter
from streams.partitioning import partition_for
from streams.registry import RegisteredDefinition
from streams.runstore import SpillingRuns
from streams.settings import Settings
from streams.topics import Catalog, Role

log = logging.getLogger("awe.orchestrator")


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from ``awe.commands`` or ``awe.results``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to write in the input record's transaction."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int


@dataclass(frozen=True, slots=True)
class Read:
    """A record that parsed, with its run's state as it stands and, for a start, the workflow it names."""

    record: Record
    message: Message
    state: RunState
    now: float
    #: ``(tenant, workflow, version)`` of a start whose workflow the registry's view has not read yet.
    unresolved: tuple[str, str, int | None] | None = None
    found: RegisteredDefinition | None = None


@dataclass(slots=True)
class Step:
    """What one input record makes the orchestrator write (nothing for a duplicate)."""

    records: list[Outgoing] = field(default_factory=list)


class Steps:
    """Reads records and decides what to write, over one worker's runs and timers.

    ``runs`` is the worker's store of run states (``get`` by key, ``put`` with the partition); ``step``
    updates it and arms ``wheel`` as it goes, so a runtime that abandons a transaction must put back what
    it had.
    """

    def __init__(self, settings: Settings, runs: Callable[[], SpillingRuns], wheel: TimerWheel) -> None:
        self.settings = settings
        self.catalog = Catalog(settings)
        self.runs = runs
        self.wheel = wheel
        self.commands = self.catalog.name(Role.COMMANDS)
        self.events = self.catalog.name(Role.EVENTS)
        self.dlq = self.catalog.name(Role.DLQ)
        self.changelog = self.catalog.run_states()

    def state(self, run_id: str) -> RunState:
        """A run's state as this worker holds it (``pending`` for a run it has not seen)."""
        return loaded_state(self.runs().get(run_id.encode())) or RunState(run_id=run_id)

    def read(
        self, record: Record, now: float, definitions: Callable[[str, str, int | None], RegisteredDefinition | None]
    ) -> Read | Step:
        """Parse ``record``: a ``Read`` to decide on, or the ``Step`` that rejects or dead-letters it.

        ``definitions`` looks a workflow up in what the registry has read; a start it does not find comes
        back with ``unresolved`` set, for the runtime to resolve (which may block) and pass to ``decide``.
        """
        key = record.key.decode() if isinstance(record.key, bytes) else None
        is_command = record.topic == self.commands
        try:
            parsed = parse_record(record.value, is_command=is_command)
            if key != parsed.run_id:
                # A record keyed otherwise sits on a partition that does not own the run: acting on it
                # would write the run's state where its other records never come.
                raise InvalidRecordError(
                    f"the record key must be the run id {parsed.run_id!r}, got {key!r}", code="key_mismatch"
                )
            expected = partition_for(parsed.run_id, self.settings.partitions)
            if record.partition != expected:
                raise InvalidRecordError(
                    f"run {parsed.run_id!r} belongs on partition {expected}, not {record.partition}: "
                    "produce with the murmur2 partitioner (librdkafka: partitioner=murmur2_random)",
                    code="wrong_partition",
                )
        except InvalidRecordError as err:
            return self._refuse(record, key, err, now)
        state = self.state(parsed.run_id)
        if isinstance(parsed, StartRun) and state.status == "pending":
            found = definitions(parsed.tenant_id, parsed.workflow, parsed.version)
            if found is None:  # applied a moment ago, or unknown: the runtime catches up before rejecting
                return Read(record, parsed, state, now, unresolved=(parsed.tenant_id, parsed.workflow, parsed.version))
            return Read(record, parsed, state, now, found=found)
        return Read(record, parsed, state, now)

    def decide(self, read: Read, found: RegisteredDefinition | None = None) -> Step:
        """``decide`` on a read record, and what to write for it; ``found`` resolves an unresolved start."""
        found = found or read.found
        if found is not None:
            inbound = Inbound(message=read.message, now=read.now, definition=found.definition, version=found.version)
        else:
            inbound = Inbound(message=read.message, now=read.now)
        return self._outputs(decide(read.state, inbound), read.record.partition)

    def _outputs(self, decision: Decision, partition: int) -> Step:
        state = decision.state
        self.wheel.track(state)
        if not decision.events:
            return Step()
        observe_decision(decision)
        key = state.run_id.encode()
        records = [Outgoing(self.events, key, encode(envelope), partition) for envelope in decision.events]
        records += [Outgoing(self.catalog.tasks(task.kind), key, encode(task), partition) for task in decision.tasks]
        encoded = encode(state)
        self.runs().put(key, stored_state(state, encoded), partition)
        records.append(Outgoing(self.changelog, key, encoded, partition))
        if state.terminal:
            log.debug("run %s %s", state.run_id, state.status, extra={"run_id": state.run_id})
        return Step(records)

    def _refuse(self, record: Record, key: str | None, err: InvalidRecordError, now: float) -> Step:
        detail = err.detail if isinstance(err.detail, dict) else {}
        run_id = detail.get("run_id")
        if run_id and run_id == key and record.topic == self.commands:
            decision = reject(
                self.state(run_id),
                tenant_id=detail.get("tenant_id") or self.settings.tenant,
                code=err.code,
                message=err.message,
                now=now,
                causation=f"{record.topic}/{record.partition}/{record.offset}",
                problems=detail.get("problems", ()),
            )
            if decision.events:
                return self._outputs(decision, record.partition)
        letter = DeadLetter.of(
            code=err.code,
            reason=err.message,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            value=record.value,
        )
        if metrics.ENABLED:
            DLQ_RECORDS.labels("orchestrator", err.code).inc()
        log.warning("dead-lettered %s/%s/%s: %s", record.topic, record.partition, record.offset, err.message)
        return Step([Outgoing(self.dlq, record.key, encode(letter), 0)])
