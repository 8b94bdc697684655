"""Consumer lag of a group: how far its committed offsets are behind the ends of the topics it reads."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.settings import Settings


class LagProbe:
    """Measures a consumer group's lag per topic and partition, with its own short-lived reads."""

    def __init__(self, settings: Settings, group_id: str, topics: list[str]) -> None:
        self.topics = topics
        # Committed offsets are read through a consumer configured with the group's id; it never joins
        # the group (no subscribe), so it does not disturb the group's assignment.
        self._group = Consumer(
            {"bootstrap.servers": settings.kafka_bootstrap, "group.id": group_id, "enable.auto.commit": False}
        )
        self._reader = Consumer(
            {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"awe-lag-{uuid.uuid4().hex}"}
        )
        self.partitions = settings.partitions

    def measure(self) -> dict[tuple[str, int], int]:
        """Lag by (topic, partition); a partition the group never committed counts from its start."""
        tps = [TopicPartition(t, p) for t in self.topics for p in range(self.partitions)]
        try:
            committed = self._group.committed(tps, timeout=10)
        except KafkaException:
            return {}
        lag: dict[tuple[str, int], int] = {}
        for tp in committed:
            low, high = self._reader.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            position = tp.offset if tp.offset >= 0 else low
            lag[(tp.topic, tp.partition)] = max(0, int(high) - int(position))
        return lag

    def close(self) -> None:
        """Release the consumers."""
        self._group.close()
        self._reader.close()
