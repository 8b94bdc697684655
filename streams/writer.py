"""Writing the records that processing one input record produces, inside that partition's transaction.

Faust's transaction manager picks a transactional producer from the consumer's metadata of the
*destination* topic, and falls back to its plain, non-transactional producer for a topic no agent of the
app subscribes to. ``awe.events`` and ``awe.dlq`` are such topics, so through ``Topic.send`` a run's events
were written outside the transaction that commits its state and input offsets: visible before the commit,
and written again after a crash. This writer names the transaction of the partition being processed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust


def commit_gate(app: faust.App) -> asyncio.Lock:
    """The lock that keeps a commit from falling in the middle of processing one input record.

    Under exactly-once a record's outputs and its acknowledgement must land in the same transaction: a
    commit between a record's first send and its ack would commit its outputs without its offset, and a
    restart would process it again and write its events twice. aiokafka also refuses sends between the end
    of one transaction and the start of the next. So every processing step that sends holds this lock from
    its first send to its ack, and the committer holds it while it commits.
    """
    gate: asyncio.Lock | None = getattr(app, "_awe_commit_gate", None)
    if gate is None:
        gate = asyncio.Lock()
        app._awe_commit_gate = gate  # type: ignore[attr-defined]
    return gate


class PartitionWriter:
    """Sends records within the transaction of a source partition (exactly-once), or plainly (at-least-once)."""

    def __init__(self, app: faust.App, source_topic: str) -> None:
        self.app = app
        self.source_topic = source_topic

    def step(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Hold around one input record's sends and its ack: no commit can split them (exactly-once)."""
        if self.app.in_transaction:
            return commit_gate(self.app)
        return contextlib.nullcontext()

    async def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int, source_partition: int) -> None:
        """Queue one record for ``topic``/``partition`` as part of the work on ``source_partition``."""
        producer = self.app.producer
        if self.app.in_transaction:
            group = self.app.assignor.group_for_topic(self.source_topic)
            transactional_id = f"{self.app.conf.id}-{group}-{source_partition}"
            await producer.send(topic, key, value, partition, None, None, transactional_id=transactional_id)
        else:
            await producer.send(topic, key, value, partition, None, None)
