"""``awe connect``: a local Kafka Connect worker and the connectors that copy the event store into
PostgreSQL (see docs/connect.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from awe.cli_common import settings as _settings
from schemas.exceptions import AweError
from streams.connect import (
    ConnectStartError,
    Database,
    Worker,
    apply,
    connector_configs,
    connector_state,
    deriver,
    down,
    status,
    up,
)

app = typer.Typer(
    help="Run Kafka Connect locally from Maven Central jars and sink the event store into PostgreSQL.",
    no_args_is_help=True,
)

_out = Console()
_err = Console(stderr=True)

PortOption = Annotated[int, typer.Option("--port", "-p", help="The worker's REST port on 127.0.0.1.")]


def _fail(exc: AweError) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    if isinstance(exc, ConnectStartError) and exc.log_tail:
        _err.print(f"[dim]last lines of {escape(str(exc.log_file))}:[/]")
        for line in exc.log_tail:
            _err.print(escape(line), soft_wrap=True, highlight=False)
    return typer.Exit(2)


def _describe(worker: Worker) -> str:
    pids = ",".join(str(pid) for pid in worker.pids)
    return f"port {worker.port}: {worker.url} on Kafka {worker.bootstrap}, pids {pids}"


@app.command("up")
def up_command(
    port: PortOption = 8083,
    derive: Annotated[
        bool, typer.Option("--derive/--no-derive", help="Also run the sink derivation (awe.events to awe.sink.*).")
    ] = True,
    wait_timeout: Annotated[float, typer.Option("--wait-timeout", help="Seconds to wait for the REST API.")] = 120.0,
) -> None:
    """Start a Kafka Connect worker (and the sink derivation) in the background; print its REST URL."""
    try:
        with _err.status("starting Kafka Connect") as spinner:
            worker = up(
                _settings(),
                port,
                derive=derive,
                wait_timeout=wait_timeout,
                progress=lambda message: spinner.update(escape(message)),
            )
    except AweError as exc:
        raise _fail(exc) from None
    _err.print(f"Kafka Connect is up: {_describe(worker)}", soft_wrap=True)
    _err.print(f"apply the connectors with: awe connect apply --port {worker.port}", highlight=False)
    typer.echo(worker.url)


@app.command("down")
def down_command(
    port: PortOption = 8083,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait after SIGTERM before SIGKILL.")] = 30.0,
) -> None:
    """Stop the Kafka Connect worker started on PORT (exit 0 even when none runs)."""
    if down(port, timeout=timeout):
        _out.print(f"stopped Kafka Connect on port {port}")
    else:
        _out.print(f"no Kafka Connect started by awe runs on port {port}")


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of text.")] = False,
) -> None:
    """Show the Kafka Connect workers started by awe that run now."""
    workers = status()
    if as_json:
        typer.echo(json.dumps([worker.to_dict() for worker in workers], indent=2))
        return
    if not workers:
        _out.print("no Kafka Connect started by awe runs")
    for worker in workers:
        _out.print(_describe(worker), soft_wrap=True)


@app.command("apply")
def apply_command(
    jdbc_url: Annotated[
        str, typer.Option("--jdbc-url", envvar="AWE_CONNECT_JDBC_URL", help="Where the JDBC sinks write.")
    ] = "jdbc:postgresql://127.0.0.1:5432/awe",
    user: Annotated[str, typer.Option("--user", envvar="AWE_CONNECT_JDBC_USER")] = "awe",
    password: Annotated[str, typer.Option("--password", envvar="AWE_CONNECT_JDBC_PASSWORD")] = "",
    port: PortOption = 8083,
) -> None:
    """Create or update the PostgreSQL sink connectors (events and runs) on the worker at PORT."""
    url = f"http://127.0.0.1:{port}"
    try:
        configs = connector_configs(_settings(), Database(jdbc_url, user, password))
        created = set(apply(url, configs))
        for name in configs:
            state = connector_state(url, name)
            verb = "created" if name in created else "updated"
            _out.print(f"{verb} {name} ({state})", highlight=False)
    except AweError as exc:
        raise _fail(exc) from None


@app.command("derive")
def derive_command() -> None:
    """Derive awe.sink.events and awe.sink.runs from awe.events in the foreground, until Ctrl-C.

    `awe connect up` runs this in the background; use it for a host or a container of its own."""
    deriver.main()
