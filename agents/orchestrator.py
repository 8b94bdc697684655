"""The orchestrator as a Faust agent: the single writer of every run's events.

It reads ``awe.commands`` and ``awe.results`` (co-partitioned, keyed by run id), keeps each run's state in
a changelog-backed table, and writes what ``agents/steps.py`` decides for each record: events to
``awe.events``, tasks to ``awe.tasks.<kind>``, timers to the wheel. Under exactly-once all of it, the table
write and the input offset commit in one Kafka transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from faust.types import EventT, StreamT

from agents.metrics import PRODUCER_ERRORS
from agents.steps import Read, Record, Steps
from agents.timers import TimerWheel
from schemas.state import RunState
from schemas.tasks import TimerFired
from streams.app import RunStateValue, raw_topic
from streams.codec import encode
from streams.exceptions import ProduceError
from streams.producer import RecordProducer
from streams.registry import DefinitionRegistry
from streams.runstore import RUN_STORE_URL, RunStore, SpillingRuns
from streams.settings import Settings
from streams.topics import Catalog, Role
from streams.writer import PartitionWriter

log = logging.getLogger("awe.orchestrator")


class Orchestrator:
    """Wires the orchestrator's steps to Kafka inside one Faust app."""

    def __init__(self, app: faust.App, settings: Settings, registry: DefinitionRegistry) -> None:
        self.app = app
        self.settings = settings
        self.registry = registry
        self.wheel = TimerWheel()
        self._wheel_stale = True
        self._timer_producer: RecordProducer | None = None
        catalog = Catalog(settings)
        self.commands_topic = catalog.name(Role.COMMANDS)
        self.source = raw_topic(app, self.commands_topic, catalog.name(Role.RESULTS))
        self.results = catalog.name(Role.RESULTS)
        self.writer = PartitionWriter(app, self.commands_topic)
        self.runs = app.Table(
            "runs",
            partitions=settings.partitions,
            key_type=bytes,
            value_type=RunStateValue,
            extra_topic_configs={"max.message.bytes": str(settings.record_max_bytes)},
            store=RUN_STORE_URL,
        )
        self.steps = Steps(settings, self._store, self.wheel)
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
        record = Record(message.topic, message.partition, message.offset, message.key, message.value)
        read = self.steps.read(record, time.time(), self.registry.get)
        if isinstance(read, Read):
            found = None
            if read.unresolved is not None:
                found = await asyncio.to_thread(self.registry.resolve, *read.unresolved)
            step = self.steps.decide(read, found)
        else:
            step = read
        write = self.writer.send
        for out in step.records:
            await write(out.topic, out.key, out.value, partition=out.partition, source_partition=message.partition)

    def _store(self) -> SpillingRuns:
        store = self.runs.data
        assert isinstance(store, RunStore)
        return store.data

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
