"""The event store flows into PostgreSQL through a real Kafka Connect worker (Maven Central jars) and
Debezium's JDBC sink: every event of every run lands exactly once, run summaries are upserted, and a
worker killed mid-stream loses and duplicates nothing. PostgreSQL comes from the OS packages."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from awe.cli_connect import app
from streams import connect
from streams.launcher import procs
from tests.harness import Engine, free_port, settings_env, wait_until

WF = {
    "name": "connect-hello",
    "inputs": {"name": {"type": "string", "required": True}},
    "nodes": {
        "greet": {"kind": "transform", "output": "hello {{ inputs.name }}"},
        "shout": {"kind": "transform", "depends_on": ["greet"], "output": "{{ nodes.greet.output }}!"},
    },
    "outputs": {"greeting": "{{ nodes.shout.output }}"},
}


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL server of this test session, queried with ``psql`` as a user would."""

    port: int
    database: str

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def query(self, sql: str) -> list[list[str]]:
        """Rows of ``sql`` as text columns."""
        where = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "awe", "-d", self.database]
        proc = subprocess.run(
            ["psql", *where, "-AtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            # A table the sink has not created yet reads as empty.
            if "does not exist" in proc.stderr:
                return []
            raise AssertionError(f"psql failed: {proc.stderr}")
        return [line.split("\t") for line in proc.stdout.splitlines()]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[int]:
    """PostgreSQL from the OS packages on a free port; as the ``postgres`` user when we are root (initdb
    refuses root, and CI runs as root)."""
    initdbs = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not initdbs or shutil.which("psql") is None:
        pytest.fail("PostgreSQL from the OS packages is needed: apt-get install postgresql (.ci/run does)")
    bindir = initdbs[-1].parent
    root = Path(tempfile.mkdtemp(prefix="awe-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "awe", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-l", str(root / "log"), "-o", options, "-w", "start"], check=True, capture_output=True)
    try:
        yield port
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(postgres_server: int) -> Postgres:
    """A database of its own for this module's tables."""
    name = f"awe_{uuid.uuid4().hex[:8]}"
    Postgres(postgres_server, "postgres").query(f"CREATE DATABASE {name}")
    return Postgres(postgres_server, name)


@pytest.fixture(scope="module")
def sink(engine: Engine, postgres: Postgres) -> Iterator[connect.Worker]:
    """`awe connect up` and `awe connect apply` on the engine's topics."""
    worker = connect.up(engine.settings, free_port(), wait_timeout=180)
    try:
        applied = CliRunner().invoke(
            app,
            ["apply", "--port", str(worker.port), "--jdbc-url", postgres.jdbc_url, "--user", "awe"],
            env=settings_env(engine.settings),
        )
        assert applied.exit_code == 0, applied.output
        prefix = engine.settings.topic_prefix.rstrip(".")
        assert applied.output.splitlines() == [
            f"created {prefix}-events-postgres (RUNNING)",
            f"created {prefix}-runs-postgres (RUNNING)",
        ]
        yield worker
    finally:
        connect.down(worker.port)


def _start_runs(engine: Engine, names: list[str]) -> list[tuple[str, int]]:
    return [engine.start("connect-hello", {"name": name}) for name in names]


def _expected(engine: Engine, run_ids: list[str]) -> list[list[str]]:
    return [[e.run_id, str(e.seq), e.tenant_id, e.type] for run_id in sorted(run_ids) for e in engine.events(run_id)]


def _in(run_ids: list[str]) -> str:
    return ",".join(f"'{run_id}'" for run_id in run_ids)


def _rows(postgres: Postgres, run_ids: list[str]) -> list[list[str]]:
    return postgres.query(
        f"SELECT run_id, seq, tenant_id, type FROM awe_events WHERE run_id IN ({_in(run_ids)}) ORDER BY run_id, seq"
    )


def test_every_event_of_every_run_lands_once_and_runs_are_summarized(
    engine: Engine, sink: connect.Worker, postgres: Postgres
) -> None:
    engine.apply(WF)
    started = _start_runs(engine, ["Ada", "Grace", "Linus"])
    for run_id, offset in started:
        assert engine.wait(run_id, offset).status == "succeeded"
    run_ids = [run_id for run_id, _ in started]
    expected = _expected(engine, run_ids)

    wait_until(lambda: len(_rows(postgres, run_ids)) >= len(expected), timeout=90)
    assert _rows(postgres, run_ids) == expected
    payload = postgres.query(
        f"SELECT payload::jsonb ->> 'workflow', time < now() FROM awe_events "
        f"WHERE run_id = '{run_ids[0]}' AND type = 'RunStarted'"
    )
    assert payload == [["connect-hello", "t"]]

    def summaries() -> list[list[str]]:
        return postgres.query(
            f"SELECT run_id, status, workflow, version, last_seq, input_tokens, cost_usd, ended_at >= started_at "
            f"FROM awe_runs WHERE run_id IN ({_in(run_ids)}) AND status = 'succeeded' ORDER BY run_id"
        )

    wait_until(lambda: len(summaries()) == len(run_ids), timeout=60)
    last_seq = {run_id: str(len(engine.events(run_id))) for run_id in run_ids}
    assert summaries() == [[r, "succeeded", "connect-hello", "1", last_seq[r], "0", "0", "t"] for r in sorted(run_ids)]


def test_a_connect_worker_killed_mid_stream_loses_and_duplicates_nothing(
    engine: Engine, sink: connect.Worker, postgres: Postgres
) -> None:
    engine.apply(WF)
    before = _start_runs(engine, [f"before-{i}" for i in range(5)])
    # SIGKILL: no graceful offset commit, so the restarted worker redelivers what it had already written.
    os.kill(sink.pids[0], signal.SIGKILL)
    wait_until(lambda: not procs.alive(sink.pids[0]), timeout=10)
    during = _start_runs(engine, [f"during-{i}" for i in range(5)])
    restarted = connect.up(engine.settings, sink.port, wait_timeout=180)
    assert restarted.pids[0] != sink.pids[0]
    after = _start_runs(engine, [f"after-{i}" for i in range(5)])
    started = before + during + after
    for run_id, offset in started:
        assert engine.wait(run_id, offset).status == "succeeded"
    run_ids = [run_id for run_id, _ in started]
    expected = _expected(engine, run_ids)

    wait_until(lambda: len(_rows(postgres, run_ids)) >= len(expected), timeout=120)
    assert _rows(postgres, run_ids) == expected
    count, distinct = postgres.query(
        f"SELECT count(*), count(DISTINCT (run_id, seq)) FROM awe_events WHERE run_id IN ({_in(run_ids)})"
    )[0]
    assert int(count) == int(distinct) == len(expected)
