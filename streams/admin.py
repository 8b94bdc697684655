"""Creating the catalog's topics, idempotently, and refusing ones that exist with the wrong shape."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.exceptions import BrokerUnavailableError, TopicMismatchError
from streams.settings import Settings
from streams.topics import Catalog, TopicSpec


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    """What ``ensure_topics`` did with one topic."""

    spec: TopicSpec
    created: bool


def admin_client(settings: Settings) -> AdminClient:
    """An admin client for the configured bootstrap servers."""
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


def _topics(admin: AdminClient, settings: Settings, timeout: float) -> dict[str, Any]:
    try:
        topics: dict[str, Any] = admin.list_topics(timeout=timeout).topics
    except KafkaException as err:
        raise BrokerUnavailableError(
            f"Kafka at {settings.kafka_bootstrap} did not answer ({err.args[0].str()}): start one with "
            "`awe kafka up`, or point AWE_KAFKA_BOOTSTRAP at yours"
        ) from err
    return topics


def check_broker(settings: Settings, timeout: float = 5.0) -> None:
    """Raise BrokerUnavailableError, one line that says what to do, unless the broker answers in time."""
    # librdkafka logs every refused connection on stderr; the error raised says it once.
    quiet = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 2})
    _topics(quiet, settings, timeout)


def ensure_topics(settings: Settings, timeout: float = 15.0) -> list[TopicOutcome]:
    """Create every catalog topic that is missing; raise TopicMismatchError for one with other partitions."""
    admin = admin_client(settings)
    catalog = Catalog(settings)
    existing = _topics(admin, settings, timeout)
    outcomes: list[TopicOutcome] = []
    wanted: list[TopicSpec] = []
    for spec in catalog.specs():
        if spec.name in existing:
            outcomes.append(TopicOutcome(spec, created=False))
        else:
            wanted.append(spec)
    if wanted:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name, num_partitions=s.partitions, replication_factor=settings.replication_factor, config=s.config
                )
                for s in wanted
            ],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        by_name = {s.name: s for s in wanted}
        for name, future in futures.items():
            try:
                future.result()
                outcomes.append(TopicOutcome(by_name[name], created=True))
            except KafkaException as err:
                if err.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
                outcomes.append(TopicOutcome(by_name[name], created=False))
    _check_partitions(admin, [o.spec for o in outcomes if not o.created], timeout)
    _await_leaders(admin, [o.spec.name for o in outcomes if o.created], timeout)
    return outcomes


def _await_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Return once every partition of the new topics has a leader, so the first read or write succeeds."""
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout).topics
        ready = all(
            name in topics
            and topics[name].error is None
            and topics[name].partitions
            and all(p.leader >= 0 and p.error is None for p in topics[name].partitions.values())
            for name in names
        )
        if ready:
            return
        time.sleep(0.05)


def _check_partitions(admin: AdminClient, specs: list[TopicSpec], timeout: float) -> None:
    """Refuse topics that exist with another partition count (including one created concurrently)."""
    if not specs:
        return
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        if all(s.name in topics for s in specs) or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # a topic another client just created can take a moment to reach metadata
    mismatched = [
        f"{s.name} has {len(topics[s.name].partitions)} partitions, the catalog says {s.partitions}"
        for s in specs
        if s.name in topics and len(topics[s.name].partitions) != s.partitions
    ]
    if mismatched:
        raise TopicMismatchError(
            "topics exist with a different partition count: " + "; ".join(mismatched), detail=mismatched
        )
