"""Today's AI usage by tenant and by workflow, followed live from ``awe.events``, for per-day budgets.

Each worker that enforces a per-day budget reads every partition of the event topic from the start of the
UTC day (``offsets_for_times``) and sums the ``AICallRecorded`` events it sees. The calls this worker
answered are counted at once (``note``), before their event is committed, and not again when it arrives.
Calls answered at the same moment by other workers are seen a few milliseconds later, so concurrent calls
can overshoot a daily budget by what they cost; the per-run budget, which travels with the task, is exact.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from schemas.ai import Usage, UsageTotals
from streams.codec import loads
from streams.consuming import assign
from streams.retry import retry_retriable
from streams.settings import Settings
from streams.topics import Catalog, Role

log = logging.getLogger("awe.usage")

_MARKER = b'"AICallRecorded"'


def utc_day(epoch_seconds: float) -> str:
    """The UTC date of a moment, as budgets count days."""
    return datetime.fromtimestamp(epoch_seconds, UTC).date().isoformat()


@dataclass
class _Day:
    counted: set[str] = field(default_factory=set)
    tenants: defaultdict[str, UsageTotals] = field(default_factory=lambda: defaultdict(UsageTotals))
    workflows: defaultdict[tuple[str, str], UsageTotals] = field(default_factory=lambda: defaultdict(UsageTotals))


class UsageLedger:
    """Usage totals per (tenant, day) and (tenant, workflow, day), kept current by a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = Catalog(settings).name(Role.EVENTS)
        self._lock = threading.Lock()
        self._days: dict[str, _Day] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, now: float, timeout: float = 30.0) -> None:
        """Read today's events so far, then keep following in the background."""
        self._thread = threading.Thread(target=self._follow, args=(now,), name="awe-usage-ledger", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the usage ledger did not catch up with {self.topic} within {timeout}s")

    def close(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def totals(self, tenant: str, workflow: str | None, day: str) -> tuple[UsageTotals, UsageTotals]:
        """What ``tenant`` spent on ``day``, and what it spent on ``workflow`` that day."""
        with self._lock:
            totals = self._days.get(day) or _Day()
            tenant_day = totals.tenants.get(tenant, UsageTotals())
            flow_day = totals.workflows.get((tenant, workflow), UsageTotals()) if workflow else UsageTotals()
            return tenant_day, flow_day

    def note(
        self, key: str, *, tenant: str, workflow: str | None, day: str, usage: Usage, cost_usd: float | None
    ) -> None:
        """Count a call this worker answered now; its event, when it arrives, is recognised by ``key``."""
        with self._lock:
            self._add(key, tenant, workflow, day, usage, cost_usd)

    def _add(self, key: str, tenant: str, workflow: str | None, day: str, usage: Usage, cost_usd: float | None) -> None:
        if day not in self._days:
            # A new day: only it and the one before can still matter to a budget.
            for old in sorted(self._days)[:-1]:
                del self._days[old]
            self._days[day] = _Day()
        totals = self._days[day]
        if key in totals.counted:
            return
        totals.counted.add(key)
        totals.tenants[tenant] = totals.tenants[tenant].add(usage, cost_usd)
        if workflow:
            totals.workflows[(tenant, workflow)] = totals.workflows[(tenant, workflow)].add(usage, cost_usd)

    def _follow(self, now: float) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"awe-usage-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,
            }
        )
        try:
            midnight = datetime.fromisoformat(utc_day(now)).replace(tzinfo=UTC).timestamp()
            partitions = [TopicPartition(self.topic, p, int(midnight * 1000)) for p in range(self.settings.partitions)]
            starts = retry_retriable(lambda: consumer.offsets_for_times(partitions, timeout=10))
            # A partition with nothing since midnight answers -1: start at its end.
            assign(
                consumer,
                [
                    TopicPartition(self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                    for tp in starts
                ],
            )
            ends: dict[int, int] = {tp.partition: self._end(consumer, tp) for tp in starts}
            positions = {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition] for tp in starts}
            while not self._stop.is_set():
                for message in consumer.consume(500, timeout=0.1):
                    if message.error() is not None:
                        log.warning("usage ledger: %s", message.error())
                        continue
                    partition, offset = message.partition(), message.offset()
                    if partition is not None and offset is not None:
                        positions[partition] = offset + 1
                    value = message.value()
                    if value and _MARKER in value:
                        self._record(value)
                if not self._ready.is_set() and all(positions[p] >= ends[p] for p in ends):
                    self._ready.set()
        except KafkaException:
            log.exception("usage ledger stopped")
        finally:
            consumer.close()

    @staticmethod
    def _end(consumer: Consumer, tp: TopicPartition) -> int:
        return int(retry_retriable(lambda: consumer.get_watermark_offsets(tp, timeout=10))[1])

    def _record(self, value: bytes) -> None:
        try:
            event = loads(value)
            payload = event["payload"]
            if event.get("type") != "AICallRecorded":
                return
            day = datetime.fromisoformat(event["time"]).astimezone(UTC).date().isoformat()
            key = f"{event['run_id']}:{payload['node_id']}:{payload['attempt']}"
            usage = Usage.model_validate(payload.get("usage") or {})
            with self._lock:
                self._add(key, event["tenant_id"], payload.get("workflow"), day, usage, payload.get("cost_usd"))
        except (ValueError, KeyError, TypeError):
            log.warning("usage ledger: skipped an AICallRecorded event it could not read")
