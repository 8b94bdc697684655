"""The CLI contract scripts rely on: exit codes, the `--json` line, the event envelope, signals, cancel."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

from tests.harness import REPO, Engine, free_port, settings_env

ENVELOPE_FIELDS = {
    "event_id",
    "run_id",
    "tenant_id",
    "seq",
    "type",
    "schema_version",
    "time",
    "causation_id",
    "correlation_id",
    "payload",
}


def awe(engine: Engine, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "awe", *args],
        env=settings_env(engine.settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(stdout: str) -> Any:
    return orjson.loads(stdout.strip().splitlines()[-1])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(text)
    return path


def test_apply_registers_versions_only_when_content_changes(engine: Engine, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    v1 = _write(tmp_path, f"name: {name}\nnodes:\n  a: {{kind: transform, output: 1}}\n")
    first = awe(engine, "workflow", "apply", str(v1))
    assert first.returncode == 0, first.stderr
    assert f"{name} version 1" in first.stdout
    again = awe(engine, "workflow", "apply", str(v1))
    assert f"{name} version 1" in again.stdout
    v2 = _write(tmp_path, f"name: {name}\nnodes:\n  a: {{kind: transform, output: 2}}\n")
    assert f"{name} version 2" in awe(engine, "workflow", "apply", str(v2)).stdout
    listed = awe(engine, "workflow", "list")
    assert any(line.startswith(name) and "version 2" in line for line in listed.stdout.splitlines())


def test_apply_invalid_exits_2_listing_every_problem(engine: Engine, tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "name: broken\n"
        "nodes:\n"
        "  a: {kind: transform, output: 1, depends_on: [ghost]}\n"
        "  b: {kind: teleport}\n"
        "  c: {kind: sleep, duration: soon}\n"
        "  d: {kind: transform, output: '{{ nodes.e.output', depends_on: [e]}\n"
        "  e: {kind: transform, output: 1, depends_on: [d]}\n",
    )
    done = awe(engine, "workflow", "apply", str(bad))
    assert done.returncode == 2
    text = done.stderr
    assert "ghost" in text
    assert "teleport" in text
    assert "nodes.c.duration" in text
    assert "cycle" in text
    assert "nodes.d.output" in text


def test_run_wait_json_success_and_events(engine: Engine) -> None:
    engine.apply(
        {
            "name": "cli-ok",
            "inputs": {"x": {"type": "integer", "required": True}, "tag": {"type": "string", "default": "t"}},
            "nodes": {"double": {"kind": "transform", "output": "{{ inputs.x * 2 }}"}},
            "outputs": {"y": "{{ nodes.double.output }}", "tag": "{{ inputs.tag }}"},
        }
    )
    done = awe(engine, "run", "cli-ok", "--input", "x=21", "--input", "tag=hi", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    run = last_json(done.stdout)
    # Said before the run ends, so a user can signal or cancel the run while the command waits.
    assert done.stderr.startswith(f"run {run['run_id']} started")
    assert set(run) >= {"run_id", "status", "outputs", "nodes"}
    assert run["status"] == "succeeded"
    assert run["outputs"] == {"y": 42, "tag": "hi"}
    assert run["nodes"]["double"] == {"status": "succeeded", "output": 42, "attempts": 1, "error": None}

    events = awe(engine, "events", run["run_id"], "--json")
    assert events.returncode == 0, events.stderr
    lines = [orjson.loads(line) for line in events.stdout.splitlines() if line.strip()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert all(set(e) == ENVELOPE_FIELDS | {"principal"} for e in lines)  # the CLI's user is known
    assert lines[0]["type"] == "RunStarted" and lines[-1]["type"] == "RunSucceeded"
    assert {e["run_id"] for e in lines} == {run["run_id"]}
    assert {e["tenant_id"] for e in lines} == {"default"}

    followed = awe(engine, "events", run["run_id"], "--follow", "--json", timeout=30)
    assert followed.returncode == 0, "--follow returns once the run has ended"
    assert [orjson.loads(line) for line in followed.stdout.splitlines() if line.strip()] == lines

    human = awe(engine, "events", run["run_id"])
    assert "RunStarted" in human.stdout and "RunSucceeded" in human.stdout


def test_run_wait_exit_codes_failure_rejection_timeout(engine: Engine) -> None:
    engine.apply({"name": "cli-fail", "nodes": {"boom": {"kind": "transform", "output": "{{ 1 // 0 }}"}}})
    failed = awe(engine, "run", "cli-fail", "--wait", "--json")
    assert failed.returncode == 1
    assert last_json(failed.stdout)["status"] == "failed"

    rejected = awe(engine, "run", "cli-missing-workflow", "--wait", "--json")
    assert rejected.returncode == 1
    assert last_json(rejected.stdout)["status"] == "rejected"

    engine.apply({"name": "cli-slow", "nodes": {"nap": {"kind": "sleep", "duration": "1h"}}})
    slow = awe(engine, "run", "cli-slow", "--wait", "--timeout", "2", "--json")
    assert slow.returncode == 3
    assert last_json(slow.stdout)["status"] == "waiting"


def test_inputs_json_and_signal_and_cancel(engine: Engine) -> None:
    engine.apply(
        {
            "name": "cli-approve",
            "inputs": {"items": {"type": "array", "required": True}},
            "nodes": {"ok": {"kind": "approval"}, "n": {"kind": "transform", "output": "{{ inputs.items | length }}"}},
            "outputs": {"n": "{{ nodes.n.output }}", "by": "{{ nodes.ok.output.by }}"},
        }
    )
    started = awe(engine, "run", "cli-approve", "--inputs-json", '{"items": [1, 2, 3]}', "--json")
    view = last_json(started.stdout)
    assert set(view) == {"run_id", "status", "outputs", "nodes", "error", "usage"}  # as --wait prints it
    assert view["status"] == "running"
    run_id = view["run_id"]
    # Straight after the start: the CLI waits for the run's first event before it checks the node.
    unknown = awe(engine, "signal", run_id, "nope", "--data", '{"approve": true}')
    assert unknown.returncode == 1
    assert f"run {run_id} has no node nope (its nodes: n, ok)" in unknown.stderr
    bare = awe(engine, "signal", run_id, "ok")
    assert bare.returncode == 2 and '--data: an approval takes {"approve": true}' in bare.stderr
    signalled = awe(engine, "signal", run_id, "ok", "--data", '{"approve": true, "by": "cli"}')
    assert signalled.returncode == 0, signalled.stderr
    state = engine.wait(run_id, timeout=30)
    assert state.status == "succeeded"
    assert state.outputs == {"n": 3, "by": "cli"}
    late = awe(engine, "signal", run_id, "ok", "--data", '{"approve": false}')
    assert late.returncode == 1 and f"run {run_id} has already succeeded" in late.stderr

    other = awe(engine, "run", "cli-approve", "--inputs-json", '{"items": []}', "--json")
    other_id = last_json(other.stdout)["run_id"]
    assert awe(engine, "cancel", other_id, "--reason", "not needed").returncode == 0
    cancelled = engine.wait(other_id, timeout=30)
    assert cancelled.status == "cancelled"
    assert cancelled.error is not None and cancelled.error.message == "not needed"
    again = awe(engine, "cancel", other_id)
    assert again.returncode == 1 and f"run {other_id} has already been cancelled" in again.stderr
    assert cancelled.nodes["ok"].status == "cancelled", "the approval it waited for is abandoned with it"


def test_topics_create_is_idempotent(engine: Engine) -> None:
    done = awe(engine, "topics", "create")
    assert done.returncode == 0, done.stderr
    assert "created" not in done.stdout
    assert f"{engine.settings.topic_prefix}events" in done.stdout


def test_a_bad_setting_exits_2_naming_the_variable(engine: Engine) -> None:
    env = {**settings_env(engine.settings), "AWE_PARTITIONS": "six"}
    done = subprocess.run(
        [sys.executable, "-m", "awe", "workflow", "list"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "AWE_PARTITIONS='six'" in done.stderr and "valid integer" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_a_broker_every_command_says_so_in_one_line(engine: Engine) -> None:
    env = {**settings_env(engine.settings), "AWE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    for args in (["run", "cli-ok", "--wait"], ["events", "r"], ["workflow", "list"], ["signal", "r", "n"], ["log"]):
        done = subprocess.run(
            [sys.executable, "-m", "awe", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1, args
        assert done.stderr.count("\n") == 1, (args, done.stderr)  # one line, no librdkafka log, no traceback
        assert "did not answer" in done.stderr and "awe kafka up" in done.stderr, args
