"""The orchestrator agent: the single writer of every run's events.

It reads ``awe.commands`` and ``awe.results`` (co-partitioned, keyed by run id), keeps each run's state in
a changelog-backed table, and carries out what ``decide`` returns: events to ``awe.events``, tasks to
``awe.tasks.<kind>``, timers to the wheel. Under exactly-once all of it, the table write and the input
offset commit in one Kafka transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from faust.types import EventT, StreamT

from agents import metrics
from agents.decide import decide, reject
from agents.exceptions import InvalidRecordError
from agents.inbound import parse_record
from agents.messages import Decision, Inbound
from agents.metrics import DLQ_RECORDS, PRODUCER_ERRORS, observe_decision
from agents.timers import TimerWheel
from schemas.commands import StartRun
from schemas.state import RunState
from schemas.tasks import TimerFired
from streams.app import RunStateValue, loaded_state, raw_topic, stored_state
from streams.codec import encode
from streams.dlq import DeadLetter
from streams.exceptions import ProduceError
from streams.partitioning import partition_for
from streams.producer import RecordProducer
from streams.registry import DefinitionRegistry
from streams.runstore import RUN_STORE_URL, RunStore
from streams.settings import Settings
from streams.topics import Catalog, Role
from streams.writer import PartitionWriter

log = logging.getLogger("awe.orchestrator")


class Orchestrator:
    """Wires ``decide`` to Kafka inside one Faust app."""

    def __init__(self, app: faust.App, settings: Settings, registry: DefinitionRegistry) -> None:
        self.app = app
        self.settings = settings
        self.catalog = Catalog(settings)
        self.registry = registry
        self.wheel = TimerWheel()
        self._wheel_stale = True
        self._timer_producer: RecordProducer | None = None
        self.commands_topic = self.catalog.name(Role.COMMANDS)
        self.source = raw_topic(app, self.commands_topic, self.catalog.name(Role.RESULTS))
        self.events = self.catalog.name(Role.EVENTS)
        self.results = self.catalog.name(Role.RESULTS)
        self.dlq = self.catalog.name(Role.DLQ)
        self.writer = PartitionWriter(app, self.commands_topic)
        self._changelog_topic: str | None = None
        self.runs = app.Table(
            "runs",
            partitions=settings.partitions,
            key_type=bytes,
            value_type=RunStateValue,
            extra_topic_configs={"max.message.bytes": str(settings.record_max_bytes)},
            store=RUN_STORE_URL,
        )
        app.agent(self.source, name="awe.orchestrator")(self._process)
        app.timer(interval=settings.timer_tick_s, name="awe.timers")(self._tick)
        app.on_rebalance_complete.connect(self._on_rebalance_complete)

    async def _process(self, stream: StreamT[bytes]) -> None:
        manual: StreamT[bytes] = stream.noack()  # type: ignore[attr-defined]
        async for event in manual.events():
            # The record's events, tasks, state and its ack go into one transaction (exactly-once).
            async with self.writer.step():
                await self.handle(event)
                event.ack()

    async def handle(self, event: EventT[bytes]) -> None:
        """Process one input record; a record that cannot be read is rejected or dead-lettered."""
        message = event.message
        key = message.key.decode() if isinstance(message.key, bytes) else None
        is_command = message.topic == self.commands_topic
        now = time.time()
        try:
            parsed = parse_record(message.value, is_command=is_command)
            if key != parsed.run_id:
                # A record keyed otherwise sits on a partition that does not own the run: acting on it
                # would write the run's state where its other records never come.
                raise InvalidRecordError(
                    f"the record key must be the run id {parsed.run_id!r}, got {key!r}", code="key_mismatch"
                )
            expected = partition_for(parsed.run_id, self.settings.partitions)
            if message.partition != expected:
                raise InvalidRecordError(
                    f"run {parsed.run_id!r} belongs on partition {expected}, not {message.partition}: "
                    "produce with the murmur2 partitioner (librdkafka: partitioner=murmur2_random)",
                    code="wrong_partition",
                )
        except InvalidRecordError as err:
            await self._reject_record(event, key, err, now)
            return
        run_id = parsed.run_id
        current = loaded_state(self.runs.get(run_id.encode())) or RunState(run_id=run_id)
        inbound = Inbound(message=parsed, now=now)
        if isinstance(parsed, StartRun) and current.status == "pending":
            found = self.registry.get(parsed.tenant_id, parsed.workflow, parsed.version)
            if found is None:  # applied a moment ago, or unknown: catch up with the topic before rejecting
                found = await asyncio.to_thread(
                    self.registry.resolve, parsed.tenant_id, parsed.workflow, parsed.version
                )
            if found is not None:
                inbound = Inbound(message=parsed, now=now, definition=found.definition, version=found.version)
        await self._carry_out(decide(current, inbound), message.partition)

    async def _carry_out(self, decision: Decision, partition: int) -> None:
        state = decision.state
        if not decision.events:
            self.wheel.arm(state.run_id, state.tenant_id, decision.timers)
            return
        observe_decision(decision)
        key = state.run_id.encode()
        write = self.writer.send
        for envelope in decision.events:
            await write(self.events, key, encode(envelope), partition=partition, source_partition=partition)
        for task in decision.tasks:
            await write(
                self.catalog.tasks(task.kind), key, encode(task), partition=partition, source_partition=partition
            )
        # The table's in-memory value, and its changelog record sent here rather than by Faust's table
        # (``runs[key] = state``), which queues the record for a background task: that send could land
        # after this record's ack, in the next transaction, or between two transactions.
        encoded = encode(state)
        self._store().put(key, stored_state(state, encoded), partition)
        await write(self._changelog(), key, encoded, partition=partition, source_partition=partition)
        self.wheel.arm(state.run_id, state.tenant_id, decision.timers)
        if state.terminal:
            log.debug("run %s %s", state.run_id, state.status, extra={"run_id": state.run_id})

    def _store(self) -> RunStore:
        store = self.runs.data
        assert isinstance(store, RunStore)
        return store

    def _changelog(self) -> str:
        if self._changelog_topic is None:
            self._changelog_topic = self.runs.changelog_topic.get_topic_name()
        return self._changelog_topic

    async def _reject_record(self, event: EventT[bytes], key: str | None, err: InvalidRecordError, now: float) -> None:
        message = event.message
        detail = err.detail if isinstance(err.detail, dict) else {}
        run_id = detail.get("run_id")
        if run_id and run_id == key and message.topic == self.commands_topic:
            state = loaded_state(self.runs.get(run_id.encode())) or RunState(run_id=run_id)
            decision = reject(
                state,
                tenant_id=detail.get("tenant_id") or self.settings.tenant,
                code=err.code,
                message=err.message,
                now=now,
                causation=f"{message.topic}/{message.partition}/{message.offset}",
                problems=detail.get("problems", ()),
            )
            if decision.events:
                await self._carry_out(decision, message.partition)
                return
        letter = DeadLetter.of(
            code=err.code,
            reason=err.message,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            value=message.value,
        )
        if metrics.ENABLED:
            DLQ_RECORDS.labels("orchestrator", err.code).inc()
        log.warning("dead-lettered %s/%s/%s: %s", message.topic, message.partition, message.offset, err.message)
        await self.writer.send(self.dlq, message.key, encode(letter), partition=0, source_partition=message.partition)

    def _on_rebalance_complete(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self._wheel_stale = True

    async def _tick(self) -> None:
        if self.app.rebalancing:
            return
        if self._wheel_stale:
            self._wheel_stale = False
            states = [v for v in self._store().live_values() if isinstance(v, RunState)]
            self.wheel.rebuild(states)
            log.info("timer wheel rebuilt: %d timers of %d live runs", len(self.wheel), len(states))
        due = self.wheel.pop_due(time.time())
        if not due:
            return
        if self._timer_producer is None:
            self._timer_producer = RecordProducer(self.settings)
        producer = self._timer_producer
        for run_id, tenant_id, timer_id in due:
            fired = TimerFired(run_id=run_id, tenant_id=tenant_id, timer_id=timer_id, fired_at=time.time())
            producer.produce(self.results, run_id, encode(fired))
        try:
            await asyncio.to_thread(producer.flush)
        except ProduceError:
            # The timers stay in the runs' state: the wheel is rebuilt from it and fires them again.
            PRODUCER_ERRORS.labels("timers").inc()
            self._wheel_stale = True
            raise
