"""Topic creation from the catalog: idempotent, configured from settings, refusing a mismatched topic."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]
from confluent_kafka.cimpl import NewTopic

from streams.admin import ensure_topics
from streams.exceptions import TopicMismatchError
from streams.topics import Catalog, Role
from tests.harness import unique_settings


def _describe(bootstrap: str, name: str) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = len(admin.list_topics(name, timeout=10).topics[name].partitions)
    resource = ConfigResource("topic", name)
    config = admin.describe_configs([resource])[resource].result()
    return {"partitions": partitions, **{k: v.value for k, v in config.items()}}


def test_creates_every_catalog_topic_once(kafka_bootstrap: str) -> None:
    settings = unique_settings(kafka_bootstrap, partitions=4, retention_commands_ms=3_600_000)
    first = ensure_topics(settings)
    catalog = Catalog(settings)
    assert {o.spec.name for o in first if o.created} == {s.name for s in catalog.specs()}
    second = ensure_topics(settings)
    assert not any(o.created for o in second)

    commands = _describe(kafka_bootstrap, catalog.name(Role.COMMANDS))
    assert commands["partitions"] == 4
    assert commands["retention.ms"] == "3600000"
    events = _describe(kafka_bootstrap, catalog.name(Role.EVENTS))
    assert events["partitions"] == 4
    assert events["retention.ms"] == "-1", "the event store is kept forever"
    definitions = _describe(kafka_bootstrap, catalog.name(Role.DEFINITIONS))
    assert definitions["cleanup.policy"] == "compact"
    assert _describe(kafka_bootstrap, catalog.tasks("http"))["partitions"] == 4


def test_existing_topic_with_other_partitions_is_an_error(kafka_bootstrap: str) -> None:
    settings = unique_settings(kafka_bootstrap, partitions=3)
    events = Catalog(settings).name(Role.EVENTS)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(events, num_partitions=2, replication_factor=1)])[events].result()
    with pytest.raises(TopicMismatchError, match=f"{events} has 2 partitions, the catalog says 3"):
        ensure_topics(settings)
