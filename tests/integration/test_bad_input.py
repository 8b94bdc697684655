"""Bad records on awe.commands: rejected on the run's log or dead-lettered, and the worker keeps going."""

from __future__ import annotations

import base64
import uuid

import orjson
import pytest

from schemas.state import RunState
from streams.codec import loads
from streams.producer import RecordProducer
from streams.topics import Catalog, Role
from tests.harness import Engine, read_topic, wait_until

OK_WF = {
    "name": "ok",
    "inputs": {"n": {"type": "integer", "required": True}},
    "nodes": {"x": {"kind": "transform", "output": "{{ inputs.n + 1 }}"}},
}


pytestmark = pytest.mark.both_runtimes


def _produce(engine: Engine, key: bytes | None, value: bytes) -> None:
    producer = RecordProducer(engine.settings)
    producer.produce(Catalog(engine.settings).name(Role.COMMANDS), key, value)
    producer.flush()


def _dead_letters(engine: Engine) -> list[dict[str, object]]:
    records = read_topic(engine.settings, Catalog(engine.settings).name(Role.DLQ))
    return [loads(v) for _, v in records if v]


def test_non_json_goes_to_the_dlq_with_reason_and_bytes(engine: Engine) -> None:
    key = f"junk-{uuid.uuid4().hex[:6]}".encode()
    value = b"\xff\xfenot json at all"
    _produce(engine, key, value)
    found: list[dict[str, object]] = []

    def arrived() -> bool:
        found[:] = [d for d in _dead_letters(engine) if d["original_base64"] == base64.b64encode(value).decode()]
        return bool(found)

    wait_until(arrived, timeout=20)
    letter = found[0]
    assert letter["code"] == "not_json"
    assert "not JSON" in str(letter["reason"])
    assert letter["source_topic"] == Catalog(engine.settings).name(Role.COMMANDS)
    assert isinstance(letter["offset"], int) and isinstance(letter["partition"], int)
    records = read_topic(engine.settings, Catalog(engine.settings).name(Role.DLQ))
    assert any(k == key for k, _ in records), "the dead letter keeps the original key"


def test_schema_violation_without_run_id_is_dead_lettered(engine: Engine) -> None:
    marker = uuid.uuid4().hex
    value = orjson.dumps({"type": "StartRun", "workflow": "ok", "note": marker})
    _produce(engine, None, value)
    wait_until(lambda: any(marker in str(d.get("original_text")) for d in _dead_letters(engine)), timeout=20)
    letter = next(d for d in _dead_letters(engine) if marker in str(d.get("original_text")))
    assert letter["code"] == "schema_mismatch"
    assert "run_id" in str(letter["reason"])


def test_schema_violation_with_run_id_is_rejected_on_the_run(engine: Engine) -> None:
    run_id = uuid.uuid4().hex
    _produce(engine, run_id.encode(), orjson.dumps({"type": "StartRun", "run_id": run_id, "inputs": "not a dict"}))
    state = engine.wait(run_id, timeout=20)
    assert isinstance(state, RunState)
    assert state.status == "rejected"
    assert state.error is not None and state.error.code == "schema_mismatch"
    [rejected] = [e for e in engine.events(run_id) if e.type == "RunRejected"]
    assert [p["path"] for p in rejected.payload["problems"]] == ["StartRun.workflow", "StartRun.inputs"]


def test_unknown_workflow_and_bad_inputs_are_rejected_and_the_worker_keeps_running(engine: Engine) -> None:
    engine.apply(OK_WF)
    state = engine.run("no-such-workflow", {})
    assert isinstance(state, RunState)
    assert state.status == "rejected" and state.error is not None
    assert state.error.code == "unknown_workflow"

    state = engine.run("ok", {"n": "seven", "extra": 1})
    assert isinstance(state, RunState)
    assert state.status == "rejected" and state.error is not None
    assert state.error.code == "invalid_inputs"
    paths = {p["path"] for p in state.error.detail}
    assert {"inputs.n", "inputs.extra"} <= paths

    state = engine.run("ok", {"n": 41})
    assert isinstance(state, RunState)
    assert state.status == "succeeded"
    assert state.nodes["x"].output == 42


def test_a_command_keyed_other_than_its_run_id_is_dead_lettered(engine: Engine) -> None:
    engine.apply(OK_WF)
    run_id = uuid.uuid4().hex
    value = orjson.dumps({"type": "StartRun", "run_id": run_id, "workflow": "ok", "inputs": {"n": 1}})
    _produce(engine, b"some-other-key", value)
    wait_until(lambda: any(run_id in str(d.get("original_text")) for d in _dead_letters(engine)), timeout=20)
    letter = next(d for d in _dead_letters(engine) if run_id in str(d.get("original_text")))
    assert letter["code"] == "key_mismatch"
    assert engine.events(run_id) == [], "nothing is written for the run"


def test_a_command_on_the_wrong_partition_is_dead_lettered(engine: Engine) -> None:
    from streams.partitioning import partition_for

    engine.apply(OK_WF)
    run_id = uuid.uuid4().hex
    wrong = (partition_for(run_id, engine.settings.partitions) + 1) % engine.settings.partitions
    value = orjson.dumps({"type": "StartRun", "run_id": run_id, "workflow": "ok", "inputs": {"n": 1}})
    producer = RecordProducer(engine.settings)
    producer.produce(Catalog(engine.settings).name(Role.COMMANDS), run_id, value, partition=wrong)
    producer.flush()
    wait_until(lambda: any(run_id in str(d.get("original_text")) for d in _dead_letters(engine)), timeout=20)
    letter = next(d for d in _dead_letters(engine) if run_id in str(d.get("original_text")))
    assert letter["code"] == "wrong_partition"
    assert "murmur2" in str(letter["reason"])
