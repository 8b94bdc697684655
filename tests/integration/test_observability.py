"""Observability end to end: a real Prometheus (from the OS packages) scrapes a real worker while runs
execute, and every PromQL query of every Grafana dashboard in ``grafana/`` must return data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from agents.wasm.manifest import to_wasm
from awe.cli_plugin import add_plugin_file
from schemas.plugins import PluginManifest
from streams.admin import ensure_topics
from streams.plugins import PluginRegistry
from streams.producer import RecordProducer
from streams.topics import Catalog, Role
from tests.agents.wasm.plugins import HOSTILE
from tests.gateway.server import GatewayServer
from tests.harness import REPO, AiServers, Engine, FlakyServer, free_port, unique_settings, wait_until
from tests.loopback import Reply

DASHBOARDS = REPO / "grafana" / "dashboards"
_METRIC = re.compile(r"\b((?:awe|process)_[a-z_]+)\b")


def _queries() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((path.name, panel["title"], target["expr"]))
    return found


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start Prometheus (the OS package) on loopback with a given scrape configuration; returns its URL."""
    binary = shutil.which("prometheus")
    assert binary, "Prometheus from the OS packages is needed: apt-get install prometheus (.ci/run does)"
    started: list[subprocess.Popen[bytes]] = []

    def start(config_text: str) -> str:
        assert binary is not None
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(config_text)
        log = (tmp_path / "prometheus.log").open("wb")
        started.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60)
        return base

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(30)


def _query(base: str, expr: str) -> list[Any]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    result: list[Any] = answer["data"]["result"]
    return result


def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    kafka_bootstrap: str,
    ai_servers: AiServers,
    http_server: FlakyServer,
    prometheus: Callable[[str], str],
    tmp_path: Path,
) -> None:
    metrics_port = free_port()
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("tenants:\n  default: {per_run: {tokens: 30}}\n")
    settings = unique_settings(kafka_bootstrap, metrics_port=metrics_port, budgets_file=budgets)
    ensure_topics(settings)
    gateway = GatewayServer(settings)
    base = prometheus(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: awe-worker\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
        f"  - job_name: awe-gateway\n    static_configs: [{{targets: ['127.0.0.1:{gateway.port}']}}]\n"
    )
    engine = Engine(settings, tmp_path, env=ai_servers.env())
    try:
        engine.start_worker()
        gateway.wait_ready()
        # The four figures a dashboard shows: successes, retries, failures (a 404, a timeout, a spent budget),
        # AI calls with tokens and cost, and a record that goes to the dead-letter topic.
        ai_servers.openai.plan("gpt-4o-mini", Reply.ok("fine", input_tokens=20, output_tokens=20))
        key = uuid.uuid4().hex[:6]
        workflows: list[dict[str, Any]] = [
            {
                "name": f"obs-ok-{key}",
                "nodes": {
                    "fetch": {
                        "kind": "http",
                        "url": f"{http_server.url}/fail/1/{key}",
                        "retry": {"initial_delay": "50ms"},
                    },
                    "ask": {
                        "kind": "ai",
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "prompt": "hi",
                        "depends_on": ["fetch"],
                    },
                    "again": {
                        "kind": "ai",
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "prompt": "x",
                        "depends_on": ["ask"],
                    },
                },
            },
            {"name": f"obs-echo-{key}", "nodes": {"a": {"kind": "http", "url": f"{http_server.url}/echo"}}},
            {"name": f"obs-404-{key}", "nodes": {"a": {"kind": "http", "url": f"{http_server.url}/status/404"}}},
            {
                "name": f"obs-slow-{key}",
                "nodes": {
                    "a": {
                        "kind": "http",
                        "url": f"{http_server.url}/slow/2",
                        "timeout": "300ms",
                        "retry": {"max_attempts": 1},
                    }
                },
            },
        ]
        wordcount = f"wc{key}"
        add_plugin_file(settings, REPO / "examples/plugins/build/wordcount.wasm", wordcount)
        runaway = f"loop{key}"
        PluginRegistry(settings).add(to_wasm(HOSTILE["infinite_loop"][0].encode()), PluginManifest(), runaway)
        workflows += [
            {"name": f"obs-wasm-{key}", "nodes": {"a": {"kind": "wasm", "plugin": wordcount, "input": "two words"}}},
            {
                "name": f"obs-fuel-{key}",
                "nodes": {"a": {"kind": "wasm", "plugin": runaway, "input": 1, "limits": {"fuel": 1_000_000}}},
            },
        ]
        for wf in workflows:
            engine.apply(wf)
        states = [engine.run(wf["name"], timeout=60) for wf in workflows]
        # A budget stops "again"; a 404, a timeout and a runaway plugin fail the rest.
        assert [s.status for s in states] == ["failed", "succeeded", "failed", "failed", "succeeded", "failed"]
        assert states[0].nodes["again"].error is not None and states[0].nodes["again"].error.code == "budget_exceeded"
        producer = RecordProducer(settings)
        producer.produce(Catalog(settings).name(Role.COMMANDS), b"junk", b"not json", partition=0)
        producer.flush()
        # Through the gateway: a start, reads, a 404, and a WebSocket client that watches the run.
        with gateway.client() as http:
            started = http.post("/v1/runs", json={"workflow": f"obs-echo-{key}", "inputs": {}})
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            with connect(gateway.ws_url) as ws:
                ws.send(json.dumps({"op": "subscribe", "run_id": run_id, "from_seq": 1}))
                while json.loads(ws.recv(timeout=30)).get("event", {}).get("type") != "RunSucceeded":
                    pass
            assert http.get(f"/v1/runs/{run_id}").status_code == 200
            assert http.get("/v1/runs/no-such-run").status_code == 404

        missing: list[str] = []
        deadline = time.monotonic() + 90
        pending = _queries()
        while pending and time.monotonic() < deadline:
            pending = [(board, title, expr) for board, title, expr in pending if not _query(base, expr)]
            if pending:
                time.sleep(1)
        names = set(httpx.get(f"{base}/api/v1/label/__name__/values", timeout=10).json()["data"])
        for board, title, expr in _queries():
            for name in _METRIC.findall(expr):
                if name not in names:
                    missing.append(f"{board} / {title}: metric {name} does not exist")
        missing += [f"{board} / {title}: no data for {expr}" for board, title, expr in pending]
        assert not missing, "\n".join(missing)

        # awe top reads the same counters from the same endpoint.
        top = subprocess.run(
            [
                sys.executable,
                "-m",
                "awe",
                "top",
                "--once",
                "--json",
                "--interval",
                "0.5",
                "--url",
                f"http://127.0.0.1:{metrics_port}/metrics",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert top.returncode == 0, top.stderr
        shown = json.loads(top.stdout.strip().splitlines()[-1])
        finished = float(_query(base, "sum(awe_runs_finished_total)")[0]["value"][1])
        cost = float(_query(base, "sum(awe_ai_cost_usd_total)")[0]["value"][1])
        assert shown["runs_finished"] == finished == 7
        assert shown["cost_usd"] == pytest.approx(cost) and cost > 0
        assert shown["tokens"] == 40  # one answered call of 20 in and 20 out (the budget refused the next)
    finally:
        gateway.close()
        engine.close()


def test_a_worker_logs_json_lines_when_asked(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, log_format="json")
    engine = Engine(settings, tmp_path)
    try:
        worker = engine.start_worker()
        engine.apply({"name": f"logs-{uuid.uuid4().hex[:6]}", "nodes": {"a": {"kind": "transform", "output": 1}}})
        lines = [line for line in worker.log_path.read_text().splitlines() if line.startswith("{")]
        parsed = [json.loads(line) for line in lines]
        assert parsed, worker.tail()
        assert all({"time", "level", "logger", "message"} <= set(p) for p in parsed)
    finally:
        engine.close()
