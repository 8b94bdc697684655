"""`awe dev`: the README's first command, on the session's broker: the demo run to completion, then the
worker and the gateway (its web page and API) kept up until Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import httpx

from awe.dev import demo_model
from streams import launcher
from tests.harness import REPO, free_port, settings_env, unique_settings, wait_until


def test_dev_runs_the_demo_to_a_completed_run(kafka_bootstrap: str) -> None:
    settings = unique_settings(kafka_bootstrap)
    env = {k: v for k, v in settings_env(settings).items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    done = subprocess.run(
        [sys.executable, "-m", "awe", "dev", "--once"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "registered triage version 1" in out
    assert "approving review" in out
    assert "RunSucceeded" in out
    assert '"status": "succeeded"' in out
    assert '"urgent": 2' in out
    assert "registered plugin redact@1" in out
    assert '"redacted": 2' in out  # the redact plugin took the e-mail address and the phone number out
    assert "[email] or [phone]" in out  # and the model saw the redacted text
    assert "AI provider: echo" in out
    assert "AICallRecorded summary echo echo-1" in out and "simulated" in out
    assert '"summary": "echo: Summarise what needs attention first' in out


def test_dev_keeps_the_gateway_up_with_the_demo_run_in_its_web_page(kafka_bootstrap: str) -> None:
    settings = unique_settings(kafka_bootstrap)
    env = {**settings_env(settings), "AWE_METRICS_PORT": str(free_port())}
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        busy = subprocess.run(
            [sys.executable, "-m", "awe", "dev", "--gateway-port", str(port)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 1
    assert busy.stderr.strip().splitlines() == [
        f"error: port {port} is already in use: stop what listens there or choose another with --gateway-port"
    ]

    dev = subprocess.Popen(
        [sys.executable, "-m", "awe", "dev", "--gateway-port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert dev.stdout is not None
        lines: list[str] = []
        for line in dev.stdout:
            lines.append(line)
            if line.startswith("awe is running"):
                break
        out = "".join(lines)
        assert f"gateway on http://127.0.0.1:{port}" in out, out
        link = re.search(rf"http://127\.0\.0\.1:{port}/#run=(demo-\d+)", out)
        assert link is not None, out
        run_id = link.group(1)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200

        def shown() -> bool:
            answer = httpx.get(f"http://127.0.0.1:{port}/v1/runs/{run_id}")
            return answer.status_code == 200 and answer.json()["status"] == "succeeded"

        wait_until(shown, timeout=60)
        dev.send_signal(signal.SIGINT)
        assert dev.wait(60) == 0
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()


def test_dev_on_a_broker_of_its_own_stops_it_and_leaves_no_client_behind() -> None:
    """The README's first command as a new user runs it: no broker yet, so `awe dev` starts one, and stops it
    at the end after every client of its own has let go (a client left open logs its reconnects there)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWE_") and not k.endswith("_API_KEY")}
    env["AWE_METRICS_PORT"] = str(free_port())
    try:
        done = subprocess.run(
            [sys.executable, "-m", "awe", "dev", "--once", "--port", str(port)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"broker up at 127.0.0.1:{port}" in done.stdout
        assert '"status": "succeeded"' in done.stdout
        assert done.stdout.rstrip().endswith("stopped")
        assert "|FAIL|" not in done.stderr, done.stderr
        assert all(cluster.port != port for cluster in launcher.status())
    finally:
        launcher.down(port)
        shutil.rmtree(launcher.awe_home() / "kafka" / "data" / str(port), ignore_errors=True)


def test_the_demo_prefers_a_real_provider_when_its_key_is_set() -> None:
    assert demo_model({"OPENAI_API_KEY": "sk"})[:2] == ("openai", "gpt-4o-mini")
    assert demo_model({"ANTHROPIC_API_KEY": "sk"})[:2] == ("anthropic", "claude-haiku-4-5")
    assert demo_model({})[:2] == ("echo", "echo-1")
