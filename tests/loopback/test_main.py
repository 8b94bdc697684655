"""``python -m tests.loopback``: the process benchmarks and demos start."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys

from tests.harness import REPO


def test_process_prints_its_port_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.loopback", "openai"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        word, port = proc.stdout.readline().split()
        assert word == "ready"
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        connection.request("POST", "/v1/chat/completions", json.dumps(body), {"content-type": "application/json"})
        answer = json.loads(connection.getresponse().read())
        connection.close()
        assert answer["choices"][0]["message"]["content"] == "echo: hi"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
