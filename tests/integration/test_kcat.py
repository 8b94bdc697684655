"""Starting runs from any Kafka producer: kcat (from the OS packages) with no awe code at all."""

from __future__ import annotations

import shutil
import subprocess
import uuid

from streams.codec import loads
from streams.topics import Catalog, Role
from tests.harness import Engine, read_topic, wait_until

WF = {
    "name": "kcat-hello",
    "inputs": {"name": {"type": "string", "required": True}},
    "nodes": {"greet": {"kind": "transform", "output": "hello {{ inputs.name }}"}},
    "outputs": {"greeting": "{{ nodes.greet.output }}"},
}


def _kcat(engine: Engine, key: str, value: str) -> None:
    """Produce one record the way docs/cli.md tells users to: keyed by run id, murmur2 partitioner."""
    binary = shutil.which("kcat")
    assert binary, "kcat from the OS packages is needed: apt-get install kcat (.ci/run does)"
    topic = Catalog(engine.settings).name(Role.COMMANDS)
    subprocess.run(
        [
            binary,
            "-P",
            "-b",
            engine.settings.kafka_bootstrap,
            "-t",
            topic,
            "-X",
            "partitioner=murmur2_random",
            "-K",
            "\t",
        ],
        input=f"{key}\t{value}\n",
        text=True,
        check=True,
        timeout=30,
    )


def test_a_start_run_produced_by_kcat_starts_a_run_that_completes(engine: Engine) -> None:
    engine.apply(WF)
    run_id = f"kcat-{uuid.uuid4().hex[:8]}"
    from streams.reader import RunReader

    with RunReader(engine.settings) as reader:
        offset = reader.end_offset(run_id)
    command = f'{{"type": "StartRun", "run_id": "{run_id}", "workflow": "kcat-hello", "inputs": {{"name": "Ada"}}}}'
    _kcat(engine, run_id, command)
    state = engine.wait(run_id, offset)
    assert state.status == "succeeded"
    assert state.outputs == {"greeting": "hello Ada"}


def test_a_malformed_command_from_kcat_lands_in_the_dlq(engine: Engine) -> None:
    key = f"kcat-bad-{uuid.uuid4().hex[:6]}"
    value = f'{{"type": "StartRun", "workflow": 42, "note": "{key}"}}'
    _kcat(engine, key, value)
    found: list[dict[str, object]] = []

    def arrived() -> bool:
        letters = [loads(v) for _, v in read_topic(engine.settings, Catalog(engine.settings).name(Role.DLQ)) if v]
        found[:] = [d for d in letters if d.get("original_text") == value]
        return bool(found)

    wait_until(arrived, timeout=30)
    assert found[0]["source_topic"] == Catalog(engine.settings).name(Role.COMMANDS)
    assert found[0]["code"] == "schema_mismatch" and "run_id" in str(found[0]["reason"])
