"""Writing the records that processing one input record produces, inside that partition's transaction.

Faust's transaction manager picks a transactional producer from the consumer's metadata of the
*destination* topic, and falls back to its plain, non-transactional producer for a topic no agent of the
app subscribes to. ``awe.events`` and ``awe.dlq`` are such topics, so through ``Topic.send`` a run's events
were written outside the transaction that commits its state and input offsets: visible before the commit,
and written again after a crash. This writer names the transaction of the partition being processed.
"""

from __future__ import annotations

import faust


class PartitionWriter:
    """Sends records within the transaction of a source partition (exactly-once), or plainly (at-least-once)."""

    def __init__(self, app: faust.App, source_topic: str) -> None:
        self.app = app
        self.source_topic = source_topic

    async def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int, source_partition: int) -> None:
        """Queue one record for ``topic``/``partition`` as part of the work on ``source_partition``."""
        producer = self.app.producer
        if self.app.in_transaction:
            group = self.app.assignor.group_for_topic(self.source_topic)
            transactional_id = f"{self.app.conf.id}-{group}-{source_partition}"
            await producer.send(topic, key, value, partition, None, None, transactional_id=transactional_id)
        else:
            await producer.send(topic, key, value, partition, None, None)
