"""The one shared consumer of a gateway process, in a thread of its own: it reads ``awe.events`` from
offset 0 (folding every event into the :class:`RunDirectory`) and ``awe.tokens`` from its end, and hands
what is live to the event loop in batches, where the hub fans it out to subscribers.

Every gateway process reads every partition (assigned, no consumer group), so any number of gateways can
run side by side and each sees every run. It must never block on a subscriber: it only hands batches over.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from gateway.directory import RunDirectory
from gateway.history import RawEvent, end_offset
from streams.consuming import assign, next_batch
from streams.settings import Settings
from streams.topics import Catalog, Role

log = logging.getLogger("awe.gateway.fanout")

POLL_S = 0.1
"""How long the consumer waits when nothing is fetched; it also bounds how soon ``stop`` is noticed."""
BATCH = 1000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """An event read live, with the workflow of its run for workflow subscriptions."""

    event: RawEvent
    workflow: str | None


@dataclass(frozen=True, slots=True)
class LiveToken:
    """A token delta read live (``awe.tokens``), already encoded as the message clients receive."""

    run_id: str
    tenant_id: str
    workflow: str | None
    message: str


Live = LiveEvent | LiveToken
Deliver = Callable[[list[Live]], None]
"""Called from the consumer thread with each batch; must hand it to the loop and return at once."""


class FanOut:
    """The consumer thread. ``ready`` is set once it is assigned and has folded the history it started with."""

    def __init__(self, settings: Settings, directory: RunDirectory, deliver: Deliver) -> None:
        catalog = Catalog(settings)
        self.settings = settings
        self.events_topic = catalog.name(Role.EVENTS)
        self.tokens_topic = catalog.name(Role.TOKENS)
        self.directory = directory
        self._deliver = deliver
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="awe-gateway-fanout", daemon=True)

    def start(self) -> None:
        """Start consuming."""
        self._thread.start()

    def stop(self) -> None:
        """Stop consuming and release the consumer."""
        self._stop.set()
        self._thread.join(10)

    def _consumer(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"awe-gateway-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,
                "fetch.max.bytes": 64 * 1024 * 1024,
                "queued.max.messages.kbytes": 256 * 1024,
            }
        )

    def _run(self) -> None:
        try:
            consumer = self._consumer()
        except Exception as e:  # reported by /readyz; the thread has nothing else to do
            self.failed = e
            log.exception("fan-out consumer could not be created")
            return
        try:
            self._consume(consumer)
        except Exception as e:
            self.failed = e
            log.exception("fan-out consumer stopped")
        finally:
            consumer.close()

    def _consume(self, consumer: Consumer) -> None:
        partitions = range(self.settings.partitions)
        ends = {p: end_offset(consumer, self.events_topic, p) for p in partitions}
        assign(
            consumer,
            [TopicPartition(self.events_topic, p, OFFSET_BEGINNING) for p in partitions]
            + [TopicPartition(self.tokens_topic, p, OFFSET_END) for p in partitions],
        )
        idle = 0
        received = False
        if not any(ends.values()):
            self.ready.set()
        while not self._stop.is_set():
            batch = next_batch(consumer, BATCH, POLL_S)
            idle = 0 if batch else idle + 1
            received = received or bool(batch)
            live: list[Live] = []
            for message in batch:
                partition, offset = message.partition(), message.offset()
                if message.error() is not None or partition is None or offset is None:
                    continue
                if message.topic() == self.tokens_topic:
                    token = self._token(message.value() or b"")
                    if token is not None:
                        live.append(token)
                    continue
                event = RawEvent.parse(partition, offset, message.value() or b"")
                if event is None:
                    continue
                workflow = self.directory.apply(partition, offset, orjson.loads(event.value))
                # History before the end the topic had at start is folded only; it is nobody's live news.
                if offset >= ends.get(partition, 0):
                    live.append(LiveEvent(event, workflow))
            if batch:
                self.directory.forget_changes()
            if not self.ready.is_set() and ((received and idle >= 3) or self._caught_up(consumer, ends)):
                # Transaction markers sit at the ends of the partitions and are never delivered, so a
                # consumer that has read and then finds nothing more for a while has caught up too.
                self.ready.set()
            if live:
                self._deliver(live)

    def _caught_up(self, consumer: Consumer, ends: dict[int, int]) -> bool:
        tps = consumer.position([TopicPartition(self.events_topic, p) for p in ends])
        return all(tp.offset >= ends[tp.partition] for tp in tps if ends[tp.partition] > 0)

    def _token(self, value: bytes) -> LiveToken | None:
        try:
            delta = orjson.loads(value)
            run_id, tenant = str(delta["run_id"]), str(delta["tenant_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        message = orjson.dumps({"type": "token", **delta}).decode()
        return LiveToken(run_id, tenant, self.directory.workflow_of(run_id), message)
