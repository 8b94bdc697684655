"""schemathesis against ``/openapi.json`` of a real gateway on a real broker: no input gives a 5xx."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.gateway.server import GatewayServer, gateway_settings


@pytest.fixture
def server(settings_factory: Callable[..., Settings]) -> Iterator[GatewayServer]:
    keys = {"op": {"tenant": "acme", "role": "operator"}}
    settings = gateway_settings(settings_factory(), api_keys=json.dumps(keys), gateway_rate_limit=10_000.0)
    gateway = GatewayServer(settings)
    gateway.wait_ready()
    yield gateway
    gateway.close()


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(server: GatewayServer, tmp_path: Path) -> None:
    command = shutil.which("schemathesis") or shutil.which("st")
    assert command is not None, "schemathesis is a dev dependency"
    done = subprocess.run(
        [
            command,
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--workers",
            "1",
            "-H",
            "Authorization: Bearer op",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    with server.client("op") as client:
        assert client.get("/openapi.json").json()["openapi"].startswith("3.")
        assert "awe gateway API" in client.get("/docs").text
