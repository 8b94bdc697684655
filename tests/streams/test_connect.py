"""Kafka Connect without a worker: the sink-ready records, the connector configurations, the worker's
properties, and the one-line errors of `awe connect up` (no Java, no Maven, no broker)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from awe.cli_connect import app
from schemas.projections import Projections, published
from streams import connect
from streams.connect.records import sink_event, sink_run
from streams.connect.worker import worker_properties
from streams.settings import Settings
from tests.harness import free_port

STARTED = {
    "event_id": "r1:1",
    "run_id": "r1",
    "tenant_id": "acme",
    "seq": 1,
    "type": "RunStarted",
    "schema_version": 1,
    "time": "2026-11-25T01:45:55.123456Z",
    "causation_id": None,
    "correlation_id": "c1",
    "payload": {"workflow": "hello", "version": 3, "inputs": {"name": "Ada"}},
}


def _connect_record(raw: bytes) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(raw)
    # What Connect's JsonConverter requires: every payload field declared by the schema, and nothing else.
    assert set(record) == {"schema", "payload"}
    assert [f["field"] for f in record["schema"]["fields"]] == list(record["payload"])
    return record


def test_an_event_becomes_a_record_keyed_by_run_and_seq_with_its_payload_as_json_text() -> None:
    key, value = sink_event(STARTED)
    assert _connect_record(key)["payload"] == {"run_id": "r1", "seq": 1}
    row = _connect_record(value)["payload"]
    assert row["tenant_id"] == "acme" and row["type"] == "RunStarted" and row["time"] == STARTED["time"]
    assert orjson.loads(row["payload"]) == STARTED["payload"]
    fields = {f["field"]: f for f in _connect_record(value)["schema"]["fields"]}
    assert fields["time"]["name"] == "io.debezium.time.ZonedTimestamp"
    assert fields["payload"]["name"] == "io.debezium.data.Json"


def test_a_run_summary_becomes_a_record_keyed_by_run() -> None:
    projections = Projections()
    projections.apply(0, 0, STARTED)
    ended = {**STARTED, "seq": 2, "type": "RunSucceeded", "time": "2026-11-25T01:46:00Z", "payload": {}}
    projections.apply(0, 1, ended)
    key, value = sink_run(published(projections.runs["r1"]))
    assert _connect_record(key)["payload"] == {"run_id": "r1"}
    row = _connect_record(value)["payload"]
    assert row["status"] == "succeeded" and row["workflow"] == "hello" and row["version"] == 3
    assert row["last_seq"] == 2 and row["ended_at"] == "2026-11-25T01:46:00Z" and row["cost_usd"] == 0.0


def test_connectors_upsert_by_key_on_the_prefixed_sink_topics() -> None:
    settings = Settings(topic_prefix="prod.")
    configs = connect.connector_configs(settings, connect.Database("jdbc:postgresql://db:5432/awe", "u", "p"))
    events, runs = configs["prod-events-postgres"], configs["prod-runs-postgres"]
    assert events["topics"] == "prod.sink.events" and runs["topics"] == "prod.sink.runs"
    assert events["insert.mode"] == runs["insert.mode"] == "upsert"
    assert events["primary.key.mode"] == "record_key" and events["primary.key.fields"] == "run_id,seq"
    assert runs["primary.key.fields"] == "run_id"
    assert events["connection.url"] == "jdbc:postgresql://db:5432/awe" and events["connection.password"] == "p"
    # Connect names each sink's consumer group after its connector: one per prefix on a shared cluster.
    assert set(connect.connector_configs(Settings(), connect.Database("jdbc:x", "u"))) == {
        "awe-events-postgres",
        "awe-runs-postgres",
    }


def test_the_worker_runs_on_the_local_port_with_the_catalog_topics() -> None:
    props = dict(
        line.split("=", 1)
        for line in worker_properties(Settings(topic_prefix="t1.", kafka_bootstrap="127.0.0.1:9999"), 18083)
        .strip()
        .splitlines()
        if not line.startswith("#")
    )
    assert props["bootstrap.servers"] == "127.0.0.1:9999" and props["listeners"] == "http://127.0.0.1:18083"
    assert props["config.storage.topic"] == "t1.connect.configs" and props["group.id"] == "t1.connect"
    assert "plugin.path" not in props


def _path_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *tools: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found is not None, f"these tests need {tool} on PATH"
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))


def test_missing_java_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _path_with(monkeypatch, tmp_path)
    result = CliRunner().invoke(app, ["up", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "Java not found on PATH: install Java 17+" in result.output
    assert connect.status() == []


def test_missing_maven_is_one_clear_line_when_the_jars_are_not_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _path_with(monkeypatch, tmp_path, "java")
    with pytest.raises(connect.ConnectMavenMissingError, match="install Maven") as caught:
        connect.resolve_jars()
    assert "\n" not in str(caught.value)


def test_a_broker_that_does_not_answer_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _path_with(monkeypatch, tmp_path, "java")
    monkeypatch.setenv("AWE_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    result = CliRunner().invoke(app, ["up", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "does not answer: start it (awe kafka up) or set AWE_KAFKA_BOOTSTRAP" in result.output


def test_a_run_summary_carries_the_tokens_and_cost_of_its_ai_calls() -> None:
    projections = Projections()
    projections.apply(0, 0, STARTED)
    call = {
        "node_id": "ask",
        "attempt": 1,
        "workflow": "hello",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "usage": {"input_tokens": 120, "output_tokens": 30},
        "cost_usd": 0.000036,
    }
    for seq in (2, 3):
        projections.apply(0, seq - 1, {**STARTED, "seq": seq, "type": "AICallRecorded", "payload": call})
    row = _connect_record(sink_run(published(projections.runs["r1"]))[1])["payload"]
    assert (row["calls"], row["input_tokens"], row["output_tokens"]) == (2, 240, 60)
    assert row["cost_usd"] == pytest.approx(0.000072) and row["status"] == "running"
