"""An API key sent as ``?token=`` (how a browser opens the WebSocket) never reaches the gateway's log."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import httpx
from websockets.sync.client import connect

from gateway.redact import RedactTokens
from streams.admin import ensure_topics
from tests.harness import REPO, free_port, settings_env, unique_settings, wait_until

KEY = "sekrit-key-of-the-test"


def test_the_filter_masks_the_token_parameter_only() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s"',
        ("127.0.0.1", "GET", f"/v1/x?a=1&token={KEY}&b=2"),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1 - "GET /v1/x?a=1&token=***&b=2"'


def test_a_token_in_the_address_stays_out_of_the_log(kafka_bootstrap: str) -> None:
    settings = unique_settings(kafka_bootstrap)
    ensure_topics(settings)
    port = free_port()
    env = {**settings_env(settings), "AWE_API_KEYS": json.dumps({KEY: {"tenant": "t", "role": "viewer"}})}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "awe", "gateway", "--port", str(port), "--log-level", "info"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: _answers(port), timeout=60)
        with connect(f"ws://127.0.0.1:{port}/v1/stream?token={KEY}") as ws:
            ws.send('{"op": "subscribe", "all": true}')
            assert json.loads(ws.recv())["type"] == "subscribed"
        httpx.get(f"http://127.0.0.1:{port}/v1/me?token={KEY}", headers={"authorization": f"Bearer {KEY}"})
    finally:
        gateway.terminate()
        log = gateway.communicate(timeout=30)[0]
    assert '"WebSocket /v1/stream?token=***" [accepted]' in log
    assert "/v1/me?token=***" in log
    assert KEY not in log


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.TransportError:
        return False
