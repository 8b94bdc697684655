"""The event store on a real broker: runs read by seq, offset and time; time travel; replay; the CLI;
definition versions that change while a run is in flight."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from schemas.state import run_view
from streams.partitioning import partition_for
from streams.store import EventStore
from tests.harness import REPO, Engine, FlakyServer, settings_env, wait_until

GOLDEN = REPO / "tests" / "golden"


def _awe(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "awe", *args],
        env=settings_env(engine.settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _chain(http_server: FlakyServer) -> dict[str, Any]:
    return {
        "name": f"store-{uuid.uuid4().hex[:6]}",
        "nodes": {
            "a": {"kind": "transform", "output": 1},
            "b": {
                "kind": "http",
                "method": "POST",
                "url": f"{http_server.url}/echo",
                "body": {"n": 2},
                "depends_on": ["a"],
            },
            "c": {"kind": "transform", "output": "{{ nodes.a.output + 2 }}", "depends_on": ["b"]},
        },
        "outputs": {"c": "{{ nodes.c.output }}"},
    }


def test_a_run_read_back_by_seq_range_offset_and_time(engine: Engine, http_server: FlakyServer) -> None:
    wf = _chain(http_server)
    engine.apply(wf)
    state = engine.run(wf["name"])
    assert state.status == "succeeded"
    store = EventStore(engine.settings)
    everything = store.run_events(state.run_id)
    seqs = [r.envelope.seq for r in everything]
    assert seqs == list(range(1, state.seq + 1))
    assert {r.partition for r in everything} == {partition_for(state.run_id, engine.settings.partitions)}

    assert [r.envelope.seq for r in store.run_events(state.run_id, from_seq=3, to_seq=5)] == [3, 4, 5]

    # The state after each event is the fold up to it: the same whether asked by seq, by offset or by time.
    for record in everything:
        by_seq = store.state_at(state.run_id, seq=record.envelope.seq)
        assert by_seq.seq == record.envelope.seq
        assert store.state_at(state.run_id, offset=record.offset) == by_seq
    scheduled = next(r for r in everything if r.envelope.type == "NodeScheduled")
    at_scheduled = store.state_at(state.run_id, seq=scheduled.envelope.seq)
    assert at_scheduled.nodes["b"].status == "scheduled" and at_scheduled.nodes["c"].status == "pending"
    assert store.state_at(state.run_id, at=scheduled.envelope.time).nodes["b"].status == "scheduled"
    assert store.state_at(state.run_id, at=everything[0].envelope.time - timedelta(seconds=1)).seq == 0
    assert store.state_at(state.run_id) == state


def test_the_topic_read_from_a_time_and_followed_live(engine: Engine, http_server: FlakyServer) -> None:
    wf = _chain(http_server)
    engine.apply(wf)
    first = engine.run(wf["name"])
    store = EventStore(engine.settings)
    last_ms = max(r.timestamp_ms for r in store.run_events(first.run_id))
    marker = datetime.fromtimestamp((last_ms + 1) / 1000, tz=UTC)
    time.sleep(0.01)
    second = engine.run(wf["name"])
    later = {r.envelope.run_id for r in store.records(from_time=marker)}
    assert second.run_id in later and first.run_id not in later

    partition = partition_for(second.run_id, engine.settings.partitions)
    offsets = [r.offset for r in store.records(partitions=[partition]) if r.envelope.run_id == second.run_id]
    from_offset = list(store.records(partitions=[partition], from_offset=offsets[2]))
    assert from_offset[0].offset == offsets[2] and all(r.partition == partition for r in from_offset)

    # A live tail sees a run that starts after it began.
    seen: list[str] = []
    run_id, _ = engine.start(wf["name"])
    for record in store.records(from_time=marker, follow=True, timeout=30):
        seen.append(record.envelope.type)
        if record.envelope.run_id == run_id and record.envelope.type == "RunSucceeded":
            break
    assert "RunSucceeded" in seen


def test_awe_state_replay_and_log_on_the_command_line(engine: Engine, http_server: FlakyServer, tmp_path: Path) -> None:
    wf = _chain(http_server)
    engine.apply(wf)
    state = engine.run(wf["name"])

    done = _awe(engine, "state", state.run_id, "--at-seq", "2", "--json")
    assert done.returncode == 0, done.stderr
    view = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert view == run_view(EventStore(engine.settings).state_at(state.run_id, seq=2))
    assert view["status"] == "running" and view["nodes"]["a"]["status"] == "succeeded"
    human = _awe(engine, "state", state.run_id)
    assert human.returncode == 0 and "succeeded after seq" in human.stdout

    done = _awe(engine, "replay", state.run_id, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert report["identical"] and report["events"] == state.seq

    logged = _awe(engine, "log", "--json", "--from-time", str(time.time() - 600))
    assert logged.returncode == 0
    lines = [orjson.loads(line) for line in logged.stdout.splitlines() if line.startswith("{")]
    assert any(e["run_id"] == state.run_id and e["type"] == "RunSucceeded" for e in lines)
    assert all({"partition", "offset", "seq", "payload"} <= set(e) for e in lines)

    assert _awe(engine, "state", "no-such-run").returncode == 1


def test_replay_of_a_tampered_golden_log_fails_with_a_readable_difference(engine: Engine, tmp_path: Path) -> None:
    source = GOLDEN / "ai-retries-fallback.jsonl"
    assert _awe(engine, "replay", "--file", str(source)).returncode == 0
    events = [json.loads(line) for line in source.read_text().splitlines()]
    retry = next(e for e in events if e["type"] == "NodeRetrying")
    retry["payload"]["retry_at"] += 5  # as if the engine had waited five seconds longer
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("".join(json.dumps(e) + "\n" for e in events))
    done = _awe(engine, "replay", "--file", str(tampered))
    assert done.returncode == 1
    assert "1 differences" in done.stdout
    assert f"seq {retry['seq']}: NodeRetrying payload.retry_at" in done.stdout


def test_a_new_definition_version_never_changes_a_run_in_flight(engine: Engine, http_server: FlakyServer) -> None:
    name = f"versions-{uuid.uuid4().hex[:6]}"
    v1 = {
        "name": name,
        "nodes": {
            "wait": {"kind": "approval"},
            "after": {"kind": "transform", "output": "v1", "depends_on": ["wait"]},
        },
        "outputs": {"made_by": "{{ nodes.after.output }}"},
    }
    assert engine.apply(v1) == 1
    run_id, offset = engine.start(name)
    wait_until(lambda: any(e.type == "RunWaiting" for e in engine.events(run_id)), 30)
    v2 = {**v1, "nodes": {**v1["nodes"], "after": {"kind": "transform", "output": "v2", "depends_on": ["wait"]}}}
    assert engine.apply(v2) == 2
    engine.client.signal(run_id, "wait", {"approve": True})
    state = engine.wait(run_id, offset)
    assert state.status == "succeeded" and state.version == 1
    assert state.outputs == {"made_by": "v1"}
    run2, offset2 = engine.start(name)
    wait_until(lambda: any(e.type == "RunWaiting" for e in engine.events(run2)), 30)
    engine.client.signal(run2, "wait", {"approve": True})
    assert engine.wait(run2, offset2).outputs == {"made_by": "v2"}


def test_projections_rebuilt_from_offset_zero_twice_identically_and_the_index_finds_runs(
    engine: Engine, http_server: FlakyServer
) -> None:
    from streams.projections import lookup_run, read_projection
    from streams.topics import Role

    wf = _chain(http_server)
    engine.apply(wf)
    states = [engine.run(wf["name"]) for _ in range(3)]

    first = _awe(engine, "projections", "rebuild", "--json")
    assert first.returncode == 0, first.stderr
    outcome = orjson.loads(first.stdout.strip().splitlines()[-1])
    assert outcome["events"] >= sum(s.seq for s in states) and outcome["events_per_s"] > 0
    again = orjson.loads(_awe(engine, "projections", "rebuild", "--json").stdout.strip().splitlines()[-1])
    assert again["digest"] == outcome["digest"] and again["events"] == outcome["events"]

    runs = read_projection(engine.settings, Role.RUNS)
    store = EventStore(engine.settings)
    for state in states:
        summary = runs[state.run_id]
        assert (summary["status"], summary["workflow"], summary["version"]) == ("succeeded", wf["name"], 1)
        assert summary["tenant_id"] == "default" and summary["last_seq"] == state.seq
        first_event = store.run_events(state.run_id)[0]
        assert lookup_run(engine.settings, state.run_id) == (first_event.partition, first_event.offset)
    shown = _awe(engine, "projections", "show", "runs", "--json")
    assert shown.returncode == 0 and states[0].run_id in shown.stdout
