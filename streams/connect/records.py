"""Sink-ready records: an ``awe.events`` record, and a run summary, as JSON with an embedded Kafka Connect
schema (``{"schema": ..., "payload": ...}``, what Connect's JsonConverter reads with ``schemas.enable``).

A JDBC sink needs a schema to create and type its columns and a key to upsert by; the event store stays
schema-less JSON and keyed by run id, and these records are derived from it (docs/connect.md says why).
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import orjson

Field = dict[str, Any]

#: Connect's logical types: an ISO-8601 string with an offset becomes ``timestamptz`` in PostgreSQL, and a
#: JSON string becomes ``json``, through Debezium's JDBC sink.
_TIME = "io.debezium.time.ZonedTimestamp"
_JSON = "io.debezium.data.Json"


def _field(name: str, kind: str, *, optional: bool = False, logical: str | None = None) -> Field:
    field: Field = {"field": name, "type": kind, "optional": optional}
    if logical is not None:
        field["name"] = logical
        field["version"] = 1
    return field


def _struct(name: str, fields: list[Field]) -> dict[str, Any]:
    return {"type": "struct", "name": name, "optional": False, "fields": fields}


EVENT_KEY_SCHEMA = _struct("awe.sink.EventKey", [_field("run_id", "string"), _field("seq", "int64")])
EVENT_SCHEMA = _struct(
    "awe.sink.Event",
    [
        _field("run_id", "string"),
        _field("seq", "int64"),
        _field("tenant_id", "string"),
        _field("type", "string"),
        _field("time", "string", logical=_TIME),
        _field("event_id", "string"),
        _field("schema_version", "int32"),
        _field("causation_id", "string", optional=True),
        _field("correlation_id", "string", optional=True),
        _field("payload", "string", logical=_JSON),
    ],
)
RUN_KEY_SCHEMA = _struct("awe.sink.RunKey", [_field("run_id", "string")])
RUN_SCHEMA = _struct(
    "awe.sink.Run",
    [
        _field("run_id", "string"),
        _field("tenant_id", "string"),
        _field("workflow", "string", optional=True),
        _field("version", "int64", optional=True),
        _field("status", "string"),
        _field("started_at", "string", logical=_TIME),
        _field("ended_at", "string", optional=True, logical=_TIME),
        _field("last_seq", "int64"),
        _field("parent_run_id", "string", optional=True),
        _field("calls", "int64"),
        _field("input_tokens", "int64"),
        _field("output_tokens", "int64"),
        _field("cost_usd", "double"),
    ],
)


def _record(schema: dict[str, Any], payload: dict[str, Any]) -> bytes:
    return orjson.dumps({"schema": schema, "payload": payload})


def _pick(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {field["field"]: data.get(field["field"]) for field in schema["fields"]}


def sink_event(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """The (key, value) of one event on ``awe.sink.events``; the payload travels as a JSON string, so a new
    payload field never changes the table's columns."""
    row = _pick(EVENT_SCHEMA, event) | {"payload": orjson.dumps(event.get("payload") or {}).decode()}
    return _record(EVENT_KEY_SCHEMA, {"run_id": event["run_id"], "seq": event["seq"]}), _record(EVENT_SCHEMA, row)


def sink_run(summary: dict[str, Any]) -> tuple[bytes, bytes]:
    """The (key, value) of one run summary (:func:`schemas.projections.published`) on ``awe.sink.runs``."""
    return _record(RUN_KEY_SCHEMA, {"run_id": summary["run_id"]}), _record(RUN_SCHEMA, _pick(RUN_SCHEMA, summary))
