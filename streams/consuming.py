"""Reading with confluent-kafka without waiting longer than the records take: assigning, batches, ends."""

from __future__ import annotations

from confluent_kafka import Consumer, Message, TopicPartition

from streams.retry import retry_retriable


def assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    """``consumer.assign(partitions)``, once the client is connected to the partitions' leaders.

    Assigned first, a fresh consumer's first fetch started about 500 ms late: reading the definitions
    topic took 505 ms, and 10 ms with this (the cost of one round trip per partition).
    """
    for topic, partition in sorted({(tp.topic, tp.partition) for tp in partitions}):
        _connect(consumer, TopicPartition(topic, partition))
    consumer.assign(partitions)


def _connect(consumer: Consumer, tp: TopicPartition) -> None:
    retry_retriable(lambda: consumer.get_watermark_offsets(tp, timeout=10, cached=False))


def next_batch(consumer: Consumer, limit: int, timeout: float) -> list[Message]:
    """Up to ``limit`` messages: waits at most ``timeout`` for the first, then takes what is already fetched.

    ``Consumer.consume(limit, timeout)`` returns early only once ``limit`` messages have arrived, so a reader
    near the end of a partition waited out the whole timeout on every call: 100-200 ms added to each read
    of a run's events, and to each live event fanned out.
    """
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(limit - 1, timeout=0)]


#: For a consumer that reads up to an end offset. A transaction marker often sits at the end; it is never
#: delivered, so a reader waiting for it idled out its poll timeouts (0.2-0.6 s a read). With this,
#: reaching the end delivers an end-of-partition event at once and ``positions`` moves past the marker.
BOUNDED_READ = {"enable.partition.eof": True}


def positions(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, int]:
    """Where the consumer stands in each partition; unlike the offsets of the messages it delivered, this
    moves past transaction markers, which are never delivered (a read up to an end offset needs it)."""
    found = consumer.position([TopicPartition(topic, p) for p in partitions])
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
