"""The ``awe`` command line: the composition root that knows schemas, streams, agents and gateway."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from confluent_kafka import KafkaException

from awe import cli_connect, cli_fork, cli_gateway, cli_store, cli_top
from awe.cli_common import EXIT_FAILED, err, out
from awe.cli_common import fail as _fail
from awe.cli_common import json_line as _json_line
from awe.cli_common import kafka_settings as _kafka_settings
from awe.cli_common import parse_inputs as _parse_inputs
from awe.cli_common import report_run as _report
from awe.cli_common import settings as _settings
from awe.cli_kafka import app as kafka_app
from awe.cli_plugin import app as plugin_app
from awe.cli_projections import app as projections_app
from awe.progress import EventPrinter
from schemas.commands import new_id
from schemas.exceptions import AweError
from schemas.refusals import refuse_answer, refuse_cancel, refuse_signal
from schemas.state import RunState, fold, run_view
from schemas.validation import load_definition_text, validate_definition
from streams.admin import ensure_topics
from streams.client import CommandClient, follow_run
from streams.reader import RunReader
from streams.registry import DefinitionRegistry
from streams.settings import Settings
from streams.store import EventStore

# How long `awe signal` waits for a run with no event yet to start before saying there is no such run.
FIRST_EVENT_WAIT_S = 10.0

app = typer.Typer(help="awe: AI workflows on Kafka, every decision on a replayable log.", no_args_is_help=True)
workflow_app = typer.Typer(help="Register and list workflow definitions.", no_args_is_help=True)
topics_app = typer.Typer(help="Manage the topics of the catalog.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(workflow_app, name="workflow")
app.add_typer(topics_app, name="topics")
app.add_typer(projections_app, name="projections")
app.command("state")(cli_store.state)
app.command("replay")(cli_store.replay_run)
app.command("log")(cli_store.log)
app.command("audit")(cli_store.audit)
app.command("top")(cli_top.top)
app.command("fork")(cli_fork.fork)
app.command("diff")(cli_fork.diff)
app.add_typer(plugin_app, name="plugin")
app.command("gateway")(cli_gateway.gateway)
app.add_typer(cli_connect.app, name="connect")


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic of the catalog that is missing (idempotent)."""
    try:
        for outcome in ensure_topics(_settings()):
            verb = "created" if outcome.created else "exists "
            count = outcome.spec.partitions
            out.print(f"{verb} {outcome.spec.name} ({count} partition{'' if count == 1 else 's'})", highlight=False)
    except AweError as e:
        _fail(e.message)


@workflow_app.command("apply")
def workflow_apply(file: Annotated[Path, typer.Argument(help="a workflow definition, YAML or JSON")]) -> None:
    """Register FILE as a new version when its content changed; print its name and version."""
    try:
        definition = validate_definition(load_definition_text(file.read_text()))
    except OSError as e:
        _fail(f"cannot read {file}: {e.strerror}")
    except AweError as e:
        _fail(f"{file}: invalid workflow\n{e}")
    settings = _settings()
    try:
        ensure_topics(settings)
        registry = DefinitionRegistry(settings)
        record, created = registry.register(settings.tenant, definition)
        registry.close()
    except AweError as e:
        _fail(e.message, EXIT_FAILED)
    note = "registered" if created else "unchanged"
    out.print(f"{record.name} version {record.version} ({note})", highlight=False)


@workflow_app.command("list")
def workflow_list() -> None:
    """List the newest version of every workflow of the tenant."""
    settings = _kafka_settings()
    registry = DefinitionRegistry(settings)
    for record in registry.list(settings.tenant):
        out.print(f"{record.name}\tversion {record.version}\t{len(record.definition.nodes)} nodes", highlight=False)
    registry.close()


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="workflow name")],
    version: Annotated[int | None, typer.Option(help="definition version (default: newest)")] = None,
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="k=v (v parsed as JSON if it can be)")
    ] = None,
    inputs_json: Annotated[str | None, typer.Option("--inputs-json", help="all inputs as a JSON object")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the run until it ends")] = False,
    timeout: Annotated[float | None, typer.Option(help="with --wait: give up after S seconds (exit 3)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run as one JSON line")] = False,
    gateway: Annotated[str | None, typer.Option("--gateway", help="talk to a gateway at URL (AWE_API_KEY)")] = None,
) -> None:
    """Start a run; with --wait, exit 0 on success, 1 on failure, cancel or rejection, 3 on timeout."""
    inputs = _parse_inputs(input or [], inputs_json)
    if gateway:
        return cli_gateway.GatewayClient(gateway).run(name, version, inputs, wait, timeout, as_json)
    settings = _kafka_settings()
    client = CommandClient(settings)
    run_id = new_id()
    start_offset = None
    if wait:
        # Read from the partition's current end: the run's events can only come after its start command.
        with RunReader(settings) as reader:
            start_offset = reader.end_offset(run_id)
    try:
        command = client.start(name, inputs, version=version, run_id=run_id)
    except AweError as e:
        _fail(e.message, EXIT_FAILED)
    if not wait:
        if as_json:
            _json_line(run_view(RunState(run_id=command.run_id)))  # the shape --wait prints, as it starts
        else:
            out.print(command.run_id)
        return
    # On stderr, so stdout stays the run alone; a user who must signal the run needs its id now.
    err.print(f"run {command.run_id} started; waiting for it to end", highlight=False)
    printer = None if as_json else EventPrinter(err)
    state = follow_run(
        settings,
        command.run_id,
        from_offset=start_offset,
        timeout=timeout,
        on_event=printer.on_event if printer else None,
    )
    _report(state, as_json)


@app.command("events")
def events(
    run_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep waiting for new events")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one envelope per line")] = False,
    gateway: Annotated[str | None, typer.Option("--gateway", help="talk to a gateway at URL (AWE_API_KEY)")] = None,
) -> None:
    """Print a run's events in seq order (through a gateway: always as JSON lines)."""
    if gateway:
        return cli_gateway.GatewayClient(gateway).events(run_id, follow)
    settings = _kafka_settings()
    printer = EventPrinter(out)
    seen: list[Any] = []
    with RunReader(settings) as reader:
        try:
            for envelope in reader.events(run_id, follow=follow, until_terminal=follow):
                seen.append(envelope)
                if as_json:
                    _json_line(envelope.model_dump(mode="json"))
                else:
                    printer.on_event(envelope, fold(run_id, seen))
        except AweError as e:
            _fail(e.message, EXIT_FAILED)
    if not seen:
        _fail(f"no events for run {run_id}", EXIT_FAILED)


@app.command("signal")
def signal(
    run_id: str,
    node: str,
    data: Annotated[str | None, typer.Option(help="JSON payload, e.g. '{\"approve\": true}'")] = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="talk to a gateway at URL (AWE_API_KEY)")] = None,
) -> None:
    """Send a signal to a node of a run (an approval's answer)."""
    payload: Any = None
    if data is not None:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            _fail(f"--data is not JSON (column {e.colno}): an approval takes '{{\"approve\": true}}'")
    if gateway:
        cli_gateway.GatewayClient(gateway).call("POST", f"/v1/runs/{run_id}/signals/{node}", json=payload)
    else:
        settings = _kafka_settings()
        refused = refuse_signal(_run_as_it_stands(settings, run_id), node)
        if refused is not None:
            _fail(refused.message, EXIT_FAILED)
        bad_answer = refuse_answer(payload)
        if bad_answer is not None:
            _fail(f"--data: {bad_answer.message}")
        CommandClient(settings).signal(run_id, node, payload)
    out.print(f"signal sent to {run_id} {node}", highlight=False)


def _run_as_it_stands(settings: Settings, run_id: str) -> RunState:
    """The run's latest state; for a run with no event yet, what it is once its first event is written."""
    store = EventStore(settings)
    state = store.state_at(run_id)
    if state.status == "pending":
        # A run started a moment ago (`awe run` without --wait) has its first event once a worker took it.
        err.print(f"run {run_id} has no event yet; waiting up to {FIRST_EVENT_WAIT_S:.0f} s for it", highlight=False)
        with RunReader(settings) as reader:
            if next(iter(reader.events(run_id, follow=True, timeout=FIRST_EVENT_WAIT_S)), None) is not None:
                state = store.state_at(run_id)
    return state


@app.command("cancel")
def cancel(
    run_id: str,
    reason: Annotated[str | None, typer.Option()] = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="talk to a gateway at URL (AWE_API_KEY)")] = None,
) -> None:
    """Cancel a run."""
    if gateway:
        cli_gateway.GatewayClient(gateway).call("POST", f"/v1/runs/{run_id}/cancel", json={"reason": reason})
    else:
        settings = _kafka_settings()
        refused = refuse_cancel(_run_as_it_stands(settings, run_id))
        if refused is not None:
            _fail(refused.message, EXIT_FAILED)
        CommandClient(settings).cancel(run_id, reason)
    out.print(f"cancel sent to {run_id}", highlight=False)


@app.command("worker")
def worker(loglevel: Annotated[str, typer.Option(help="debug, info, warning")] = "info") -> None:
    """Run a worker (orchestrator, executors, timers) until Ctrl-C; several workers share the partitions."""
    from agents.worker import run_worker

    try:
        run_worker(_settings(), loglevel=loglevel)
    except AweError as e:
        _fail(e.message, EXIT_FAILED)


@app.command("dev")
def dev(
    port: Annotated[int, typer.Option(help="broker port")] = 9092,
    example: Annotated[str, typer.Option(help="which example to run")] = "triage",
    once: Annotated[bool, typer.Option("--once", help="stop everything after the demo run")] = False,
    gateway_port: Annotated[
        int, typer.Option(help="the gateway's port: web page and API (0: none; no gateway with --once)")
    ] = 8080,
) -> None:
    """Start a broker, a worker and the examples; run one example live, approving it when it asks."""
    from awe.dev import run_dev

    try:
        code = run_dev(port=port, example=example, once=once, console=out, gateway_port=gateway_port)
    except AweError as e:
        _fail(e.message, EXIT_FAILED)
    raise typer.Exit(code)


def main() -> None:
    """Entry point of the ``awe`` script: a failure no command caught is one line on stderr, not a traceback."""
    try:
        app()
    except KafkaException as e:
        bootstrap = os.environ.get("AWE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
        err.print(f"[red]error:[/red] Kafka at {bootstrap}: {e.args[0].str()}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_FAILED)
    except AweError as e:
        err.print(f"[red]error:[/red] {e.message}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_FAILED)
