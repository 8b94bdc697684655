"""A real gateway for tests: uvicorn on 127.0.0.1 with an ephemeral port, in a thread of the test process."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import uvicorn

from awe.cli_gateway import SERVER_OPTIONS, replay_report
from gateway.app import create_app
from streams.settings import Settings


class GatewayServer:
    """``create_app(settings)`` served over a real socket until :meth:`close`, with the engine's replayer
    as ``awe gateway`` has it unless ``replayer=None`` is given."""

    def __init__(self, settings: Settings, **app_options: Any) -> None:
        self.settings = settings
        app_options.setdefault("replayer", replay_report)
        app = create_app(settings, **app_options)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            **SERVER_OPTIONS,
            ws_max_size=settings.ws_max_message_bytes * 4,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="test-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError("the gateway did not start")
            time.sleep(0.02)
        sock = self._server.servers[0].sockets[0]
        self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/stream"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/readyz`` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/readyz", timeout=10).status_code == 200:
                return
            time.sleep(0.1)
        raise TimeoutError("the gateway never became ready")

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client that sends ``key`` as its bearer credential."""
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def close(self) -> None:
        """Stop serving and run the lifespan's shutdown."""
        self._server.should_exit = True
        self._thread.join(30)


def gateway_settings(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with gateway options changed, validated again (so keys and secrets become SecretStr)."""
    return Settings(**{**settings.model_dump(), **changes})
