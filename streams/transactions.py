"""Writing records and the input offsets they answer in one Kafka transaction, from one thread.

For a consumer outside Faust that wants exactly-once: its outputs become visible to ``read_committed``
readers together with the commit of the inputs they answer, or not at all. Several inputs' outputs share
one transaction (a group commit), so a commit round trip is paid per batch, not per record.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from streams.producer import producer_config
from streams.settings import Settings

log = logging.getLogger("awe.transactions")

#: How long one transaction may stay open. A worker killed inside one leaves its partitions unreadable to
#: ``read_committed`` consumers until the broker aborts it, so it is short: ours take milliseconds.
TRANSACTION_TIMEOUT_MS = 10_000
#: How long a transactional call may block the calling thread.
CALL_TIMEOUT_S = 10.0
#: The first retry's backoff (librdkafka doubles it up to ``retry.backoff.max.ms``). A transaction that
#: follows another at once is answered CONCURRENT_TRANSACTIONS while the broker still writes the last
#: one's markers, about a millisecond; at librdkafka's default of 100 ms, back-to-back transactions of one
#: record and its offsets took 90 ms each, and 3 ms with this.
RETRY_BACKOFF_MS = 1


class TransactionalWriter:
    """A transactional producer: ``commit`` writes records and consumer offsets atomically.

    Only one thread may use it. ``transactional_id`` must be unique among live writers; a consumer group's
    generation, passed with the offsets, fences a writer whose partitions were reassigned (KIP-447).
    """

    def __init__(self, settings: Settings, transactional_id: str, **overrides: Any) -> None:
        self._config = producer_config(
            settings,
            **{
                "transactional.id": transactional_id,
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                "retry.backoff.ms": RETRY_BACKOFF_MS,
            },
            **overrides,
        )
        self._producer = self._open()

    def _open(self) -> Producer:
        producer = Producer(self._config)
        producer.init_transactions(CALL_TIMEOUT_S)
        return producer

    def commit(
        self,
        records: list[tuple[str, bytes | None, bytes, int]],
        offsets: list[TopicPartition],
        group_metadata: object,
    ) -> bool:
        """Write ``(topic, key, value, partition)`` records and commit ``offsets`` for the group, atomically.

        ``False`` when the transaction was aborted (nothing became visible): the caller tries again later,
        by when a revocation that caused it has been seen.
        """
        producer = self._producer
        try:
            producer.begin_transaction()
            for topic, key, value, partition in records:
                self._produce(topic, key, value, partition)
            if offsets:
                producer.send_offsets_to_transaction(offsets, group_metadata, CALL_TIMEOUT_S)
            producer.commit_transaction(CALL_TIMEOUT_S)
            return True
        except KafkaException as exc:
            self._recover(exc.args[0])
            return False

    def _produce(self, topic: str, key: bytes | None, value: bytes, partition: int) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, partition=partition)
                return
            except BufferError:  # the local queue is full: let deliveries make room
                self._producer.poll(0.05)

    def _recover(self, err: KafkaError) -> None:
        log.warning("a transaction failed (%s); it is aborted and tried again", err)
        if not err.fatal():
            try:
                self._producer.abort_transaction(CALL_TIMEOUT_S)
                return
            except KafkaException as abort_err:
                log.warning("the abort failed too (%s)", abort_err.args[0])
        # The producer is unusable (fenced, or stuck mid-abort): a new one with its id aborts what it left.
        self._producer = self._open()

    def close(self) -> None:
        """Drop the producer; call after the last ``commit``."""
        self._producer.flush(CALL_TIMEOUT_S)
