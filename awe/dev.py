"""``awe dev``: a broker, a worker and the examples on this machine, with one example run live."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from awe.cli_plugin import add_plugin_file
from awe.progress import EventPrinter
from awe.webhook import WebhookSink
from schemas.envelope import Envelope
from schemas.exceptions import AweError
from schemas.state import RunState, run_view
from schemas.validation import load_definition_text, validate_definition
from streams import launcher
from streams.admin import ensure_topics
from streams.client import CommandClient, follow_run
from streams.plugins import PluginRegistry
from streams.reader import RunReader
from streams.registry import DefinitionRegistry
from streams.settings import Settings

DEV_METRICS_PORT = 9464

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: The example plugins, built by examples/plugins/build.sh and committed so the demo needs no C toolchain.
PLUGINS = EXAMPLES / "plugins" / "build"

DEMO_TICKETS = [
    "Printer on floor 3 is out of toner",
    "URGENT: checkout page returns 500 for every customer",
    "Please reset my password; reach me at ada@example.com or +1 555 0100",
    "Urgent - data export job has been failing since midnight",
]


#: The model the demo uses when a provider's key is set, in order of preference.
REAL_MODELS = (("OPENAI_API_KEY", "openai", "gpt-4o-mini"), ("ANTHROPIC_API_KEY", "anthropic", "claude-haiku-4-5"))


def demo_model(environ: dict[str, str]) -> tuple[str, str, str]:
    """The provider and model the demo's AI node uses, and a sentence saying why."""
    for variable, provider, model in REAL_MODELS:
        if environ.get(variable):
            return provider, model, f"AI provider: {provider} {model} ({variable} is set)"
    return (
        "echo",
        "echo-1",
        (
            "AI provider: echo (simulated answers, marked as such on the log); set OPENAI_API_KEY or "
            "ANTHROPIC_API_KEY to use a real model"
        ),
    )


def _demo_inputs(example: str, webhook: str, console: Console) -> dict[str, Any]:
    if example == "triage":
        provider, model, why = demo_model(dict(os.environ))
        console.print(why, highlight=False)
        return {"tickets": DEMO_TICKETS, "webhook": webhook, "ai_provider": provider, "ai_model": model}
    return {"name": "awe"}


def run_dev(*, port: int, example: str, once: bool, console: Console, gateway_port: int = 8080) -> int:
    """Run the demo; with ``once`` stop after it, else keep everything up (with the gateway on
    ``gateway_port`` unless it is 0) until Ctrl-C. Returns an exit code."""
    if not once and gateway_port and not _port_free(gateway_port):
        raise AweError(
            f"port {gateway_port} is already in use: stop what listens there or choose another with --gateway-port",
            code="gateway_port_in_use",
        )
    started_broker = False
    bootstrap = os.environ.get("AWE_KAFKA_BOOTSTRAP")
    existing = [c for c in launcher.status() if c.port == port]
    if bootstrap:
        console.print(f"using the broker at AWE_KAFKA_BOOTSTRAP={bootstrap}", highlight=False)
    elif existing:
        bootstrap = existing[0].bootstrap
        console.print(f"using the broker already running at {bootstrap}", highlight=False)
    else:
        with console.status(f"starting Apache Kafka on 127.0.0.1:{port} ..."):
            bootstrap = launcher.up(port).bootstrap
        started_broker = True
        console.print(f"broker up at {bootstrap}", highlight=False)
    settings = Settings(kafka_bootstrap=bootstrap)
    env = {**os.environ, "AWE_KAFKA_BOOTSTRAP": bootstrap}
    metrics_port = _metrics_port()
    if metrics_port is not None:
        env["AWE_METRICS_PORT"] = str(metrics_port)
        console.print(f"worker metrics on http://127.0.0.1:{metrics_port}/metrics (watch with `awe top`)")
    worker = subprocess.Popen([sys.executable, "-m", "awe", "worker", "--loglevel", "error"], env=env)
    gateway: subprocess.Popen[bytes] | None = None
    try:
        ensure_topics(settings)
        plugins = PluginRegistry(settings)
        for path in sorted(PLUGINS.glob("*.wasm")):
            plugin, tag, _ = add_plugin_file(settings, path, path.stem, registry=plugins)
            console.print(f"registered plugin {tag} sha256:{plugin.sha256[:12]}", highlight=False)
        plugins.close()
        registry = DefinitionRegistry(settings)
        for path in sorted(EXAMPLES.glob("*.yaml")):
            definition = validate_definition(load_definition_text(path.read_text()))
            record, _ = registry.register(settings.tenant, definition)
            console.print(f"registered {record.name} version {record.version}", highlight=False)
        registry.close()
        # Up before the demo starts, so the demo can be followed in the web page too.
        gateway = None if once else _start_gateway(env, gateway_port, console)
        page = f"http://127.0.0.1:{gateway_port}/" if gateway is not None else None
        state = _demo_run(settings, example, console, page)
        view = run_view(state)
        console.print_json(data={key: view[key] for key in ("run_id", "status", "outputs", "error")})
        console.print(f"every node of it: awe state {state.run_id}", highlight=False)
        code = 0 if state.status == "succeeded" else 1
        if not once:
            console.print("awe is running; Ctrl-C stops the worker, the gateway and the broker.")
            # SIGINT too: a shell that starts `awe dev &` hands it down ignored, and Ctrl-C or kill -INT
            # should still stop everything.
            signal.signal(signal.SIGTERM, _interrupt)
            signal.signal(signal.SIGINT, _interrupt)
            with contextlib.suppress(KeyboardInterrupt):
                worker.wait()
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(30)
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if started_broker:
            launcher.down(port)
        console.print("stopped")


def _metrics_port() -> int | None:
    """The worker's metrics port: AWE_METRICS_PORT, else 9464 when it is free, else none."""
    if os.environ.get("AWE_METRICS_PORT"):
        return int(os.environ["AWE_METRICS_PORT"])
    return DEV_METRICS_PORT if _port_free(DEV_METRICS_PORT) else None


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_gateway(env: dict[str, str], port: int, console: Console) -> subprocess.Popen[bytes] | None:
    if port == 0:
        return None
    command = [sys.executable, "-m", "awe", "gateway", "--port", str(port), "--log-level", "warning"]
    console.print(f"gateway on http://127.0.0.1:{port}: the web page at /, API docs at /docs", highlight=False)
    return subprocess.Popen(command, env=env)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _demo_run(settings: Settings, example: str, console: Console, page: str | None) -> RunState:
    client = CommandClient(settings)
    printer = EventPrinter(console)
    with WebhookSink() as sink:
        run_id = f"demo-{int(time.time())}"
        with RunReader(settings) as reader:
            offset = reader.end_offset(run_id)
        client.start(example, _demo_inputs(example, sink.url, console), run_id=run_id)
        console.print(f"started run {run_id} of {example}; its events, live:", highlight=False)
        if page is not None:
            console.print(f"     (or in the web page: {page}#run={run_id})", highlight=False)

        def on_event(envelope: Envelope, state: RunState) -> None:
            printer.on_event(envelope, state)
            if envelope.type == "RunWaiting" and envelope.payload["reason"] == "approval":
                node = envelope.payload["node_id"]
                console.print(f"     approving {node} (awe signal {run_id} {node} --data '{{\"approve\": true}}')")
                client.signal(run_id, node, {"approve": True, "by": "awe dev"})

        return follow_run(settings, run_id, from_offset=offset, timeout=120, on_event=on_event)
