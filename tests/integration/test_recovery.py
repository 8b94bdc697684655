"""A worker killed with SIGKILL mid-run: another worker finishes every run, with no gap and no duplicate."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from schemas.envelope import Envelope
from schemas.state import RunState, fold
from streams.admin import ensure_topics
from streams.codec import decode
from streams.topics import Catalog, Role
from tests.harness import Engine, FlakyServer, read_topic, unique_settings, wait_until

pytestmark = pytest.mark.both_runtimes


def _all_events(engine: Engine) -> dict[str, list[Envelope]]:
    by_run: dict[str, list[Envelope]] = {}
    for _, value in read_topic(engine.settings, Catalog(engine.settings).name(Role.EVENTS)):
        envelope = decode(value or b"", Envelope)
        by_run.setdefault(envelope.run_id, []).append(envelope)
    return by_run


def _table_states(engine: Engine) -> dict[str, RunState]:
    changelog = Catalog(engine.settings).run_states()
    states: dict[str, RunState] = {}
    for key, value in read_topic(engine.settings, changelog):
        if key is not None and value is not None:
            states[key.decode()] = RunState.model_validate_json(value)
    return states


#: Why a worker joining under load may fail under the Faust runtime (docs/architecture.md).
FAUST_REBALANCE = (
    "under Faust a worker may crash in its recovery of a rebalance while runs flow (ConsistencyError: a changelog "
    "high watermark read as -1)"
)
#: Why the paused-worker test fails under the Faust runtime (docs/architecture.md).
FAUST_STALL = (
    "under Faust the woken worker may crash (aiokafka IllegalOperation) and the other one in Faust's recovery "
    "of the rebalance that follows (ConsistencyError), leaving no worker"
)


def test_kill_9_mid_run_then_a_new_worker_finishes(
    kafka_bootstrap: str, orchestrator: str, tmp_path_factory: pytest.TempPathFactory, http_server: FlakyServer
) -> None:
    settings = unique_settings(kafka_bootstrap, orchestrator=orchestrator)
    ensure_topics(settings)
    engine = Engine(settings, Path(tmp_path_factory.mktemp("kill9")))
    try:
        first = engine.start_worker()
        engine.apply(
            {
                "name": "chain",
                "nodes": {
                    "a": {"kind": "http", "url": f"{http_server.url}/echo", "method": "POST", "body": {"n": 1}},
                    "nap": {"kind": "sleep", "duration": "1500ms", "depends_on": ["a"]},
                    "b": {"kind": "http", "url": f"{http_server.url}/slow/0.3", "depends_on": ["nap"]},
                    "c": {"kind": "transform", "output": "{{ nodes.a.output.json.got.n + 1 }}", "depends_on": ["b"]},
                },
                "outputs": {"c": "{{ nodes.c.output }}"},
            }
        )
        runs = [engine.start("chain") for _ in range(6)]
        # Kill once every run is asleep: its timer exists only in the state the dead worker committed.
        wait_until(
            lambda: all(any(e.type == "RunWaiting" for e in _all_events(engine).get(run_id, [])) for run_id, _ in runs),
            timeout=30,
        )
        first.kill()
        engine.start_worker()
        for run_id, offset in runs:
            state = engine.wait(run_id, offset, timeout=60)
            assert isinstance(state, RunState)
            assert state.status == "succeeded", (state.error, engine.workers[-1].tail())
            assert state.outputs == {"c": 2}

        events = _all_events(engine)
        tables = _table_states(engine)
        for run_id, _ in runs:
            log = events[run_id]
            assert [e.seq for e in log] == list(range(1, len(log) + 1)), "contiguous seq, no duplicates"
            assert len({e.event_id for e in log}) == len(log)
            assert [e.type for e in log].count("RunSucceeded") == 1
            assert tables[run_id].model_dump() == fold(run_id, log).model_dump(), "table state == fold(events)"
    finally:
        engine.close()


def test_a_worker_paused_past_its_session_rejoins_without_writing_twice(
    kafka_bootstrap: str,
    orchestrator: str,
    tmp_path_factory: pytest.TempPathFactory,
    http_server: FlakyServer,
    request: pytest.FixtureRequest,
) -> None:
    """A worker stopped (SIGSTOP) past its session loses its partitions to another; woken, it holds stale
    states and due timers. Whatever it then writes must not reach a run's log twice."""
    if orchestrator == "faust":
        request.applymarker(pytest.mark.xfail(reason=FAUST_STALL, strict=False))
    settings = unique_settings(kafka_bootstrap, orchestrator=orchestrator)
    ensure_topics(settings)
    engine = Engine(settings, Path(tmp_path_factory.mktemp("paused")))
    try:
        first = engine.start_worker()
        engine.apply(
            {
                "name": "nap",
                "nodes": {
                    "a": {"kind": "http", "url": f"{http_server.url}/echo"},
                    "nap": {"kind": "sleep", "duration": "3s", "depends_on": ["a"]},
                    "b": {"kind": "http", "url": f"{http_server.url}/echo", "depends_on": ["nap"]},
                },
            }
        )
        runs = [engine.start("nap") for _ in range(6)]
        wait_until(
            lambda: all(any(e.type == "RunWaiting" for e in _all_events(engine).get(run_id, [])) for run_id, _ in runs),
            timeout=30,
        )
        os.kill(first.proc.pid, signal.SIGSTOP)
        try:
            engine.start_worker()
            for run_id, offset in runs:
                assert engine.wait(run_id, offset, timeout=60).status == "succeeded"
        finally:
            os.kill(first.proc.pid, signal.SIGCONT)
        later = [engine.start("nap") for _ in range(6)]
        for run_id, offset in later:
            assert engine.wait(run_id, offset, timeout=60).status == "succeeded", engine.workers[0].tail()

        events = _all_events(engine)
        tables = _table_states(engine)
        for run_id, _ in runs + later:
            log = events[run_id]
            assert [e.seq for e in log] == list(range(1, len(log) + 1)), "contiguous seq, no duplicates"
            assert [e.type for e in log].count("RunSucceeded") == 1
            assert tables[run_id].model_dump() == fold(run_id, log).model_dump(), "table state == fold(events)"
    finally:
        engine.close()


def test_a_worker_joining_under_load_leaves_every_run_recorded_once(
    kafka_bootstrap: str,
    orchestrator: str,
    tmp_path_factory: pytest.TempPathFactory,
    http_server: FlakyServer,
    request: pytest.FixtureRequest,
) -> None:
    """A second worker joins while the first is busy: the rebalance revokes partitions mid-stream (on the loop,
    possibly with a transaction open), and every run still ends once, with contiguous seq."""
    if orchestrator == "faust":
        # Not strict: it fails in some rounds only (one in four or five here).
        request.applymarker(pytest.mark.xfail(reason=FAUST_REBALANCE, strict=False))
    settings = unique_settings(kafka_bootstrap, orchestrator=orchestrator)
    ensure_topics(settings)
    engine = Engine(settings, Path(tmp_path_factory.mktemp("joining")))
    try:
        engine.start_worker()
        engine.apply(
            {
                "name": "busy",
                "nodes": {
                    "a": {"kind": "http", "url": f"{http_server.url}/echo"},
                    "nap": {"kind": "sleep", "duration": "1s", "depends_on": ["a"]},
                    "b": {"kind": "http", "url": f"{http_server.url}/echo", "depends_on": ["nap"]},
                    "c": {"kind": "transform", "output": "{{ nodes.b.output.status }}", "depends_on": ["b"]},
                },
            }
        )
        runs = [engine.start("busy") for _ in range(30)]
        joining = engine.start_worker(wait=False)
        while not joining.ready.is_set():  # runs start, sleep and wake throughout the rebalance
            runs.append(engine.start("busy"))
            time.sleep(0.02)
        runs += [engine.start("busy") for _ in range(30)]
        for run_id, offset in runs:
            assert engine.wait(run_id, offset, timeout=90).status == "succeeded"

        events = _all_events(engine)
        tables = _table_states(engine)
        for run_id, _ in runs:
            log = events[run_id]
            assert [e.seq for e in log] == list(range(1, len(log) + 1)), "contiguous seq, no duplicates"
            assert [e.type for e in log].count("RunSucceeded") == 1
            assert tables[run_id].model_dump() == fold(run_id, log).model_dump(), "table state == fold(events)"
    finally:
        engine.close()


def test_two_workers_share_the_partitions(
    kafka_bootstrap: str, orchestrator: str, tmp_path_factory: pytest.TempPathFactory, http_server: FlakyServer
) -> None:
    from confluent_kafka.admin import AdminClient

    settings = unique_settings(kafka_bootstrap, orchestrator=orchestrator)
    ensure_topics(settings)
    engine = Engine(settings, Path(tmp_path_factory.mktemp("two")))
    try:
        engine.start_worker(wait=False)
        engine.start_worker(wait=False)
        for worker in engine.workers:
            worker.wait_ready()
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

        def both_assigned() -> bool:
            group = admin.describe_consumer_groups([settings.app_id])[settings.app_id].result()
            owners = [m for m in group.members if m.assignment.topic_partitions]
            commands = {
                tp.partition
                for m in group.members
                for tp in m.assignment.topic_partitions
                if tp.topic == Catalog(settings).name(Role.COMMANDS)
            }
            return len(owners) == 2 and commands == set(range(settings.partitions))

        wait_until(both_assigned, timeout=60, interval=0.5)
        engine.apply(
            {
                "name": "pair",
                "nodes": {
                    "a": {"kind": "http", "url": f"{http_server.url}/echo"},
                    "b": {"kind": "transform", "output": "{{ nodes.a.output.status }}", "depends_on": ["a"]},
                },
            }
        )
        runs = [engine.start("pair") for _ in range(12)]
        for run_id, offset in runs:
            state = engine.wait(run_id, offset, timeout=60)
            assert isinstance(state, RunState)
            assert state.status == "succeeded"
            assert state.nodes["b"].output == 200
        for worker in engine.workers:
            worker.stop()
            assert worker.proc.returncode == 0, f"SIGTERM stops a worker cleanly; its log ends:\n{worker.tail(80)}"
    finally:
        engine.close()


def test_events_are_written_inside_kafka_transactions(engine: Engine) -> None:
    """Under exactly-once a run's events commit with its state: each transaction leaves a commit marker, so
    the records of a partition written transactionally cover fewer offsets than the partition holds."""
    from confluent_kafka import Consumer, TopicPartition

    from streams.partitioning import partition_for

    assert engine.settings.processing_guarantee == "exactly_once"
    engine.apply({"name": "txn", "nodes": {"a": {"kind": "transform", "output": 1}}})
    state = engine.run("txn")
    assert state.status == "succeeded"
    topic = Catalog(engine.settings).name(Role.EVENTS)
    tp = TopicPartition(topic, partition_for(state.run_id, engine.settings.partitions), 0)
    consumer = Consumer(
        {"bootstrap.servers": engine.settings.kafka_bootstrap, "group.id": "txn-check", "enable.auto.commit": False}
    )
    try:
        end = consumer.get_watermark_offsets(tp, timeout=10)[1]
        consumer.assign([tp])
        offsets: list[int] = []
        while True:
            msg = consumer.poll(2)
            if msg is None:
                break
            if not msg.error():
                offsets.append(msg.offset() or 0)
    finally:
        consumer.close()
    assert len(offsets) == len(engine.events(state.run_id)), "the partition holds the run's events"
    assert len(offsets) < end, f"no commit markers among {end} offsets: events were written outside a transaction"
