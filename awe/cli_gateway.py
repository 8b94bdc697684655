"""``awe gateway``: the REST and WebSocket gateway under uvicorn; and the CLI's way of talking to one."""

from __future__ import annotations

import gc
import logging
import time
from typing import Annotated, Any

import typer

from awe.cli_common import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, fail, json_line, kafka_settings, out, settings
from schemas.envelope import Envelope
from schemas.exceptions import AweError
from schemas.state import TERMINAL_RUN
from streams.admin import ensure_topics
from streams.logs import json_log_handler
from streams.reader import TERMINAL_EVENTS

SERVER_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "gateway.wsprotocol:CoalescingWebSocketProtocol",
    # Compressing every message costs a zlib stream per connection (memory) and per message (CPU), for
    # JSON envelopes of a few hundred bytes; at 10,000 subscribers it was a fifth of the gateway's time.
    "ws_per_message_deflate": False,
    # The hub's heartbeat already pings every client and closes those that stop answering.
    "ws_ping_interval": None,
}
"""How the gateway is served (docs/gateway.md, "Benchmark"), shared with the tests' server."""


GC_THRESHOLDS = (50_000, 20, 100)
"""Collector thresholds for a gateway process (CPython's are 700, 10, 10)."""


def replay_report(events: list[Envelope]) -> dict[str, Any]:
    """The gateway's replayer: ``awe replay --json`` of the events (the gateway may not import the engine)."""
    from agents.replay import replay

    return replay(events).as_json()


def collect_rarely() -> None:
    """Make the cyclic collector's pauses rare, for a process that holds 10,000 connections.

    A full collection walks every object: at 10,000 connections that stopped the loop for 1.1-1.5 s, and
    one ran in most 15 s windows of the benchmark, because the objects of messages in flight outlived the
    default 700-allocation young generation and were counted as long-lived. A larger young generation lets
    them die young; what the process made before serving (modules, schemas, the app) is frozen out of every
    collection. Cycles are still collected, only less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def gateway(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    require_auth: Annotated[
        bool, typer.Option("--require-auth", help="refuse to start without API keys or a JWT key")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Serve REST (/v1, /openapi.json, /docs) and the WebSocket /v1/stream until Ctrl-C."""
    import uvicorn

    from gateway.app import create_app

    config = kafka_settings()
    try:
        ensure_topics(config)
        app = create_app(config, require_auth=require_auth, replayer=replay_report)
    except AweError as e:
        fail(e.message)
    collect_rarely()
    json_logs: dict[str, Any] = {}
    if config.log_format == "json":
        # uvicorn's and the gateway's loggers all write JSON lines through the root logger.
        logging.basicConfig(level=log_level.upper(), handlers=[json_log_handler()], force=True)
        json_logs = {"log_config": None}
    uvicorn.run(
        app,
        host=host,
        port=port,
        **SERVER_OPTIONS,
        # The protocol's own limit only guards memory; the app answers oversized messages with its error.
        ws_max_size=config.ws_max_message_bytes * 4,
        log_level=log_level,
        timeout_graceful_shutdown=5,
        **json_logs,
    )


class GatewayClient:
    """``awe run|events|signal|cancel --gateway URL``: the same commands over REST, with ``AWE_API_KEY``."""

    def __init__(self, url: str) -> None:
        import httpx

        key = settings().api_key
        headers = {"authorization": f"Bearer {key.get_secret_value()}"} if key is not None else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; a gateway error (or no gateway) prints its message and exits like the Kafka path."""
        import httpx

        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            fail(f"gateway unreachable: {e}", EXIT_FAILED)
        if answer.status_code >= 400:
            error = answer.json().get("error", {}) if answer.headers.get("content-type") == "application/json" else {}
            problems = (error.get("detail") or {}).get("problems") if isinstance(error.get("detail"), dict) else None
            lines = [f"{p['path']}: {p['message']}" for p in problems or []]
            message = error.get("message", answer.text)
            fail("\n".join([f"{answer.status_code} {error.get('code', '')}: {message}", *lines]), EXIT_FAILED)
        return answer.json()

    def run(
        self, name: str, version: int | None, inputs: dict[str, Any], wait: bool, timeout: float | None, as_json: bool
    ) -> None:
        """Start a run; with ``wait``, poll it until it ends and exit as ``awe run --wait`` does."""
        body: dict[str, Any] = {"workflow": name, "inputs": inputs}
        if version is not None:
            body["version"] = version
        run_id = self.call("POST", "/v1/runs", json=body)["run_id"]
        if not wait:
            if as_json:
                json_line({"run_id": run_id, "status": "running", "outputs": None, "nodes": {}})
            else:
                out.print(run_id)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        view = self.call("GET", f"/v1/runs/{run_id}")
        while view["status"] not in TERMINAL_RUN and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
            view = self.call("GET", f"/v1/runs/{run_id}")
        if as_json:
            json_line(view)
        else:
            out.print_json(data=view)
        if view["status"] == "succeeded":
            raise typer.Exit(EXIT_OK)
        raise typer.Exit(EXIT_FAILED if view["status"] in TERMINAL_RUN else EXIT_TIMEOUT)

    def events(self, run_id: str, follow: bool) -> None:
        """Print the run's envelopes, one JSON line each; with ``follow``, until the run ends."""
        after = 0
        ended = False
        while True:
            page = self.call("GET", f"/v1/runs/{run_id}/events", params={"after_seq": after})
            for envelope in page["events"]:
                json_line(envelope)
                ended = ended or envelope["type"] in TERMINAL_EVENTS
            after = page["last_seq"]
            if not follow or ended:
                break
            time.sleep(0.2)
        if after == 0:
            fail(f"no events for run {run_id}", EXIT_FAILED)
