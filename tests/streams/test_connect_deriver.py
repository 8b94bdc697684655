"""The sink derivation against a real broker: every event of ``awe.events`` reaches ``awe.sink.events``
once across a restart, and ``awe.sink.runs`` carries each run's summary."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from streams.connect.deriver import SinkDeriver
from streams.topics import Catalog, Role
from tests.harness import Engine, read_topic, wait_until

WF = {
    "name": "derive-hello",
    "inputs": {"name": {"type": "string", "required": True}},
    "nodes": {"greet": {"kind": "transform", "output": "hello {{ inputs.name }}"}},
    "outputs": {"greeting": "{{ nodes.greet.output }}"},
}
APPROVAL = {
    "name": "derive-approval",
    "nodes": {"approve": {"kind": "approval"}},
    "outputs": {"approval": "{{ nodes.approve.output }}"},
}


@contextmanager
def _deriving(engine: Engine) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=SinkDeriver(engine.settings).run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


def _sink(engine: Engine, role: Role) -> list[dict[str, object]]:
    values = [value for _key, value in read_topic(engine.settings, Catalog(engine.settings).name(role)) if value]
    return [orjson.loads(value)["payload"] for value in values]


def _events(engine: Engine) -> Counter[tuple[object, object]]:
    return Counter((row["run_id"], row["seq"]) for row in _sink(engine, Role.SINK_EVENTS))


def _run(engine: Engine, name: str) -> str:
    run_id, offset = engine.start("derive-hello", {"name": name})
    assert engine.wait(run_id, offset).status == "succeeded"
    return run_id


def test_each_event_is_derived_once_across_a_restart(engine: Engine) -> None:
    engine.apply(WF)
    first = [_run(engine, "Ada"), _run(engine, "Grace")]
    expected = Counter((run_id, e.seq) for run_id in first for e in engine.events(run_id))
    with _deriving(engine):
        wait_until(lambda: _events(engine) == expected, timeout=30)

    later = _run(engine, "Linus")
    expected.update((later, e.seq) for e in engine.events(later))
    with _deriving(engine):
        wait_until(lambda: _events(engine) == expected, timeout=30)

    summaries = _sink(engine, Role.SINK_RUNS)
    newest = {row["run_id"]: row for row in summaries}
    assert {run_id: row["status"] for run_id, row in newest.items()} == dict.fromkeys([*first, later], "succeeded")
    assert newest[later]["workflow"] == "derive-hello" and newest[later]["last_seq"] == len(engine.events(later))
    # The restart folded the first runs again without writing their final summaries a second time.
    assert Counter(row["run_id"] for row in summaries if row["status"] == "succeeded") == Counter([*first, later])


def test_a_run_in_flight_across_a_restart_gets_its_final_summary(engine: Engine) -> None:
    engine.apply(APPROVAL)
    run_id, offset = engine.start("derive-approval")

    def newest() -> dict[str, object]:
        return {row["run_id"]: row for row in _sink(engine, Role.SINK_RUNS)}.get(run_id, {})

    with _deriving(engine):
        wait_until(lambda: newest().get("status") == "waiting", timeout=30)
    engine.client.signal(run_id, "approve", {"approve": True})
    assert engine.wait(run_id, offset).status == "succeeded"
    # The second deriver saw only the run's last events: the summary comes from folding it again from 0.
    with _deriving(engine):
        wait_until(lambda: newest().get("status") == "succeeded", timeout=30)
    assert newest()["workflow"] == "derive-approval" and newest()["last_seq"] == len(engine.events(run_id))
