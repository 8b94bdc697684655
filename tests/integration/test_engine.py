"""Workflows end to end on a real Apache Kafka broker, through a real worker process."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from schemas.commands import new_id
from schemas.state import RunState, timer_id
from streams.partitioning import partition_for
from streams.topics import Catalog, Role
from tests.harness import Engine, FlakyServer, read_topic, unique_settings

pytestmark = pytest.mark.both_runtimes


def _name() -> str:
    return f"wf-{uuid.uuid4().hex[:8]}"


def _run(engine: Engine, definition: dict[str, Any], inputs: dict[str, Any] | None = None) -> RunState:
    engine.apply(definition)
    state = engine.run(definition["name"], inputs)
    assert isinstance(state, RunState)
    return state


def _types(engine: Engine, run_id: str) -> list[str]:
    return [e.type for e in engine.events(run_id)]


def test_transform_chain_produces_outputs(engine: Engine) -> None:
    wf = {
        "name": _name(),
        "inputs": {"words": {"type": "array", "required": True}},
        "nodes": {
            "upper": {"kind": "transform", "output": "{{ inputs.words | map('upper') | list }}"},
            "joined": {"kind": "transform", "output": "{{ nodes.upper.output | join('-') }}", "depends_on": ["upper"]},
            "count": {"kind": "transform", "output": "{{ nodes.upper.output | length }}", "depends_on": ["joined"]},
        },
        "outputs": {"text": "{{ nodes.joined.output }}", "n": "{{ nodes.count.output }}"},
    }
    state = _run(engine, wf, {"words": ["a", "b", "c"]})
    assert state.status == "succeeded"
    assert state.outputs == {"text": "A-B-C", "n": 3}
    events = engine.events(state.run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_fan_out_and_fan_in_over_http(engine: Engine, http_server: FlakyServer) -> None:
    branches = {
        f"b{i}": {
            "kind": "http",
            "method": "POST",
            "url": f"{http_server.url}/echo",
            "body": {"i": i},
            "depends_on": ["root"],
        }
        for i in range(4)
    }
    wf = {
        "name": _name(),
        "nodes": {
            "root": {"kind": "transform", "output": 1},
            **branches,
            "join": {
                "kind": "transform",
                "output": "{{ [nodes.b0.output.json.got.i, nodes.b1.output.json.got.i, nodes.b2.output.json.got.i,"
                " nodes.b3.output.json.got.i] }}",
                "depends_on": list(branches),
            },
        },
        "outputs": {"all": "{{ nodes.join.output }}"},
    }
    state = _run(engine, wf)
    assert state.status == "succeeded", state.error
    assert state.outputs == {"all": [0, 1, 2, 3]}
    assert all(state.nodes[b].output["status"] == 200 for b in branches)


def test_when_false_skips_and_skip_propagates_unless_all_done(engine: Engine) -> None:
    wf = {
        "name": _name(),
        "nodes": {
            "a": {"kind": "transform", "output": 1},
            "gated": {"kind": "transform", "output": 2, "when": "{{ nodes.a.output > 5 }}", "depends_on": ["a"]},
            "after": {"kind": "transform", "output": 3, "depends_on": ["gated"]},
            "anyway": {"kind": "transform", "output": 4, "depends_on": ["gated"], "trigger": "all_done"},
        },
    }
    state = _run(engine, wf)
    assert state.status == "succeeded"
    assert state.nodes["gated"].status == "skipped"
    assert state.nodes["gated"].output is None
    assert state.nodes["after"].status == "skipped"
    assert state.nodes["anyway"].status == "succeeded"


def test_map_keeps_input_order(engine: Engine) -> None:
    wf = {
        "name": _name(),
        "inputs": {"xs": {"type": "array", "required": True}},
        "nodes": {
            "sq": {
                "kind": "map",
                "over": "{{ inputs.xs }}",
                "node": {"kind": "transform", "output": "{{ item * item + index }}"},
            },
        },
        "outputs": {"sq": "{{ nodes.sq.output }}"},
    }
    state = _run(engine, wf, {"xs": [3, 1, 2]})
    assert state.outputs == {"sq": [9, 2, 6]}


def test_triage_example_runs_with_approval(engine: Engine, http_server: FlakyServer) -> None:
    from pathlib import Path

    from schemas.validation import load_definition_text, validate_definition

    text = (Path(__file__).resolve().parents[2] / "examples" / "triage.yaml").read_text()
    definition = validate_definition(load_definition_text(text))
    engine.registry.register(engine.settings.tenant, definition)
    from awe.cli_plugin import add_plugin_file

    add_plugin_file(
        engine.settings, Path(__file__).resolve().parents[2] / "examples/plugins/build/redact.wasm", "redact"
    )
    tickets = ["Printer jam", "URGENT: site down", "urgent: refund failing"]
    run_id, offset = engine.start("triage", {"tickets": tickets, "webhook": f"{http_server.url}/echo"})

    def approve(envelope: Any, _state: Any) -> None:
        if envelope.type == "RunWaiting" and envelope.payload["reason"] == "approval":
            engine.client.signal(run_id, envelope.payload["node_id"], {"approve": True})

    state = engine.wait(run_id, offset, on_event=approve)
    assert isinstance(state, RunState)
    assert state.status == "succeeded", state.error
    assert state.outputs is not None and state.outputs["urgent"] == 2 and state.outputs["redacted"] == 0
    assert state.nodes["notify"].output["json"]["got"]["urgent"] == [
        {"text": "urgent: site down", "urgent": True},
        {"text": "urgent: refund failing", "urgent": True},
    ]
    assert state.nodes["review"].status == "succeeded"


def test_http_retries_until_success(engine: Engine, http_server: FlakyServer) -> None:
    key = uuid.uuid4().hex
    wf = {
        "name": _name(),
        "nodes": {
            "call": {
                "kind": "http",
                "url": f"{http_server.url}/fail/2/{key}",
                "retry": {"max_attempts": 4, "initial_delay": "50ms", "max_delay": "200ms"},
            }
        },
    }
    state = _run(engine, wf)
    assert state.status == "succeeded"
    assert state.nodes["call"].attempts == 3
    assert http_server.hits[f"/fail/2/{key}"] == 3
    types = _types(engine, state.run_id)
    assert types.count("NodeRetrying") == 2
    assert types.count("NodeScheduled") == 3


def test_http_retries_exhausted_fail_the_run(engine: Engine, http_server: FlakyServer) -> None:
    key = uuid.uuid4().hex
    wf = {
        "name": _name(),
        "nodes": {
            "call": {
                "kind": "http",
                "url": f"{http_server.url}/fail/9/{key}",
                "retry": {"max_attempts": 2, "initial_delay": 0.05},
            },
            "never": {"kind": "transform", "output": 1, "depends_on": ["call"]},
        },
    }
    state = _run(engine, wf)
    assert state.status == "failed"
    assert state.nodes["call"].attempts == 2
    assert state.nodes["call"].error is not None and state.nodes["call"].error.code == "http_500"
    assert state.nodes["never"].status == "pending"


def test_non_retryable_4xx_fails_at_once(engine: Engine, http_server: FlakyServer) -> None:
    wf = {"name": _name(), "nodes": {"call": {"kind": "http", "url": f"{http_server.url}/status/404"}}}
    state = _run(engine, wf)
    assert state.status == "failed"
    assert state.nodes["call"].attempts == 1
    assert state.error is not None and state.error.code == "http_404"


def test_on_error_continue_lets_the_run_succeed(engine: Engine, http_server: FlakyServer) -> None:
    wf = {
        "name": _name(),
        "nodes": {
            "call": {"kind": "http", "url": f"{http_server.url}/status/400", "on_error": "continue"},
            "fallback": {"kind": "transform", "output": "fallback", "depends_on": ["call"], "trigger": "all_done"},
        },
        "outputs": {"x": "{{ nodes.fallback.output }}"},
    }
    state = _run(engine, wf)
    assert state.status == "succeeded"
    assert state.nodes["call"].status == "failed"
    assert state.outputs == {"x": "fallback"}


def test_attempt_timeout_is_retried_then_fails(engine: Engine, http_server: FlakyServer) -> None:
    wf = {
        "name": _name(),
        "nodes": {
            "slow": {
                "kind": "http",
                "url": f"{http_server.url}/slow/2",
                "timeout": "300ms",
                "retry": {"max_attempts": 2, "initial_delay": "50ms"},
            }
        },
    }
    state = _run(engine, wf)
    assert state.status == "failed"
    assert state.nodes["slow"].attempts == 2
    assert state.error is not None and state.error.code == "timeout"


def _approval_wf(deadline: str = "1h") -> dict[str, Any]:
    return {
        "name": _name(),
        "nodes": {
            "ask": {"kind": "approval", "timeout": deadline},
            "done": {"kind": "transform", "output": "{{ nodes.ask.output }}", "depends_on": ["ask"]},
        },
    }


def _signal_when_waiting(engine: Engine, wf: dict[str, Any], data: Any) -> RunState:
    engine.apply(wf)
    run_id, offset = engine.start(wf["name"])

    def answer(envelope: Any, _state: Any) -> None:
        if envelope.type == "RunWaiting":
            engine.client.signal(run_id, "ask", data)

    state = engine.wait(run_id, offset, on_event=answer)
    assert isinstance(state, RunState)
    return state


def test_approval_approved(engine: Engine) -> None:
    state = _signal_when_waiting(engine, _approval_wf(), {"approve": True, "by": "ada"})
    assert state.status == "succeeded"
    assert state.nodes["done"].output == {"approve": True, "by": "ada"}


def test_approval_rejected(engine: Engine) -> None:
    state = _signal_when_waiting(engine, _approval_wf(), {"approve": False})
    assert state.status == "failed"
    assert state.nodes["ask"].error is not None and state.nodes["ask"].error.code == "rejected"


def test_approval_deadline(engine: Engine) -> None:
    state = _run(engine, _approval_wf("300ms"))
    assert state.status == "failed"
    assert state.nodes["ask"].error is not None and state.nodes["ask"].error.code == "timeout"


def test_cancel_stops_a_sleeping_run(engine: Engine) -> None:
    wf: dict[str, Any] = {
        "name": _name(),
        "nodes": {
            "nap": {"kind": "sleep", "duration": "1h"},
            "after": {"kind": "transform", "output": 1, "depends_on": ["nap"]},
        },
    }
    engine.apply(wf)
    run_id, offset = engine.start(wf["name"])

    def cancel(envelope: Any, _state: Any) -> None:
        if envelope.type == "RunWaiting":
            engine.client.cancel(run_id, "test")

    state = engine.wait(run_id, offset, on_event=cancel)
    assert isinstance(state, RunState)
    assert state.status == "cancelled"
    assert state.nodes["after"].status == "pending"
    assert _types(engine, run_id)[-1] == "RunCancelled"


def test_sleep_completes(engine: Engine) -> None:
    wf = {"name": _name(), "nodes": {"nap": {"kind": "sleep", "duration": "200ms"}}}
    state = _run(engine, wf)
    assert state.status == "succeeded"
    assert state.ended_at is not None and state.started_at is not None
    assert (state.ended_at - state.started_at).total_seconds() >= 0.2


def test_a_node_that_ends_in_time_leaves_no_timeout_timer_to_fire(engine: Engine, http_server: FlakyServer) -> None:
    wf = {
        "name": _name(),
        "nodes": {
            "quick": {"kind": "http", "url": f"{http_server.url}/ok", "timeout": "500ms"},
            "nap": {"kind": "sleep", "duration": "900ms", "depends_on": ["quick"]},
        },
    }
    state = _run(engine, wf)
    assert state.status == "succeeded"
    fired = [
        json.loads(value)["timer_id"]
        for key, value in read_topic(engine.settings, Catalog(engine.settings).name(Role.RESULTS))
        if key == state.run_id.encode() and value is not None and b'"TimerFired"' in value
    ]
    # The run outlived quick's deadline by 400 ms: only the sleep's own timer may have fired.
    assert fired == [timer_id("sleep", "nap", 1)]


def test_a_finished_run_turns_away_a_second_start_and_a_late_cancel(engine: Engine) -> None:
    wf = {"name": _name(), "nodes": {"only": {"kind": "transform", "output": 1}}}
    state = _run(engine, wf)
    recorded = engine.events(state.run_id)
    # Both are read against the state the worker keeps for a finished run (as JSON, not as an object).
    engine.client.start(wf["name"], {}, run_id=state.run_id)
    engine.client.cancel(state.run_id)
    # A partition's records are handled in order: a run on the same partition that ends after them shows
    # that they were handled, and that the worker is still running.
    partitions = engine.settings.partitions
    home = partition_for(state.run_id, partitions)
    later = next(run_id for run_id in iter(new_id, None) if partition_for(run_id, partitions) == home)
    engine.client.start(wf["name"], {}, run_id=later)
    assert engine.wait(later).status == "succeeded"
    assert engine.events(state.run_id) == recorded


def test_an_output_too_large_for_a_record_fails_its_node_once_and_the_worker_goes_on(
    engine: Engine, http_server: FlakyServer
) -> None:
    limit = engine.settings.record_max_bytes
    engine.apply(
        {
            "name": "too-big",
            "inputs": {"url": {"type": "string", "required": True}},
            "nodes": {"get": {"kind": "http", "method": "GET", "url": "{{ inputs.url }}"}},
        }
    )
    state = engine.run("too-big", {"url": f"{http_server.url}/big/{limit + (1 << 20)}"}, timeout=60)
    assert state.status == "failed"
    node = state.nodes["get"]
    assert node.error is not None and (node.error.code, node.error.retryable) == ("output_too_large", False)
    assert "AWE_RECORD_MAX_BYTES" in node.error.message and node.attempts == 1
    # Kafka's default record limit is 1 MiB; outputs past it, up to AWE_RECORD_MAX_BYTES, go through.
    after = engine.run("too-big", {"url": f"{http_server.url}/big/{3 << 20}"}, timeout=60)
    assert after.status == "succeeded"
    assert len(after.nodes["get"].output["json"]) == (3 << 20) - 2


def test_a_saturated_executor_runs_every_task_once(
    kafka_bootstrap: str, orchestrator: str, tmp_path: Path, http_server: FlakyServer
) -> None:
    # One task at a time: past two taken tasks the http executor pauses its partitions, and resumes them as
    # tasks finish (restarting their fetch where they stand). Through all of it no task is lost or run twice.
    engine = Engine(unique_settings(kafka_bootstrap, http_concurrency=1, orchestrator=orchestrator), tmp_path)
    try:
        engine.start_worker()
        key = uuid.uuid4().hex[:8]
        branches = {
            f"b{i}": {"kind": "http", "method": "POST", "url": f"{http_server.url}/{key}/{i}", "depends_on": ["root"]}
            for i in range(12)
        }
        wf: dict[str, Any] = {"name": _name(), "nodes": {"root": {"kind": "transform", "output": 1}, **branches}}
        engine.apply(wf)
        started = [engine.start(wf["name"]) for _ in range(3)]
        states = [engine.wait(run_id, offset) for run_id, offset in started]
        assert [s.status for s in states] == ["succeeded"] * 3
        assert all(s.nodes[b].attempts == 1 for s in states for b in branches)
        assert {p: n for p, n in http_server.hits.items() if key in p} == {f"/{key}/{i}": 3 for i in range(12)}
    finally:
        engine.close()
