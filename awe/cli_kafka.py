"""``awe kafka``: run Apache Kafka on this machine without Docker (see docs/kafka.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from streams.launcher import BrokerStartError, Cluster, LauncherError, down, status, up

app = typer.Typer(
    help="Run Apache Kafka (KRaft) locally from Maven Central jars, without Docker.",
    no_args_is_help=True,
)

_out = Console()
_err = Console(stderr=True)

PortOption = Annotated[
    int,
    typer.Option(
        "--port",
        "-p",
        help="Client port of the first broker; node n uses port+n-1, its controller port+100+n-1.",
    ),
]


def _fail(exc: LauncherError) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    if isinstance(exc, BrokerStartError) and exc.log_tail:
        _err.print(f"[dim]last lines of {escape(str(exc.log_file))}:[/]")
        for line in exc.log_tail:
            _err.print(escape(line), soft_wrap=True, highlight=False)
    return typer.Exit(2)


def _describe(cluster: Cluster) -> str:
    kind = "ephemeral" if cluster.ephemeral else "persistent"
    nodes = f"{cluster.brokers} broker{'s' if cluster.brokers > 1 else ''}"
    pids = ",".join(str(pid) for pid in cluster.pids)
    return (
        f"port {cluster.port}: {nodes}, bootstrap [bold]{cluster.bootstrap}[/], pids {pids}, "
        f"{kind} data in {escape(str(cluster.data_dir))}"
    )


@app.command("up")
def up_command(
    port: PortOption = 9092,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Data directory, kept across down/up (default: $AWE_HOME/kafka/data/PORT)."),
    ] = None,
    ephemeral: Annotated[
        bool, typer.Option("--ephemeral", help="Use a temporary data directory, removed by `down`.")
    ] = False,
    brokers: Annotated[
        int, typer.Option("--brokers", "-n", min=1, help="Number of nodes (broker+controller each).")
    ] = 1,
    wait_timeout: Annotated[
        float, typer.Option("--wait-timeout", help="Seconds to wait for the cluster to serve metadata.")
    ] = 90.0,
) -> None:
    """Start a local Kafka cluster in the background and print its bootstrap address."""
    if data is not None and ephemeral:
        _err.print("[bold red]error:[/] --data and --ephemeral exclude each other: choose one")
        raise typer.Exit(2)
    try:
        with _err.status("starting Kafka") as spinner:
            cluster = up(
                port,
                data_dir=data,
                ephemeral=ephemeral,
                brokers=brokers,
                wait_timeout=wait_timeout,
                progress=lambda message: spinner.update(escape(message)),
            )
    except LauncherError as exc:
        raise _fail(exc) from None
    _err.print(f"Kafka is up: {_describe(cluster)}", soft_wrap=True)
    _err.print(f"stop it with: awe kafka down --port {cluster.port}", highlight=False)
    # The bootstrap address alone on stdout, so `BOOTSTRAP=$(awe kafka up)` works.
    typer.echo(cluster.bootstrap)


@app.command("down")
def down_command(
    port: PortOption = 9092,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait after SIGTERM before SIGKILL.")] = 30.0,
) -> None:
    """Stop the local Kafka cluster started on PORT (exit 0 even when none runs)."""
    try:
        with _err.status(f"stopping Kafka on port {port}"):
            stopped = down(port, timeout=timeout)
    except LauncherError as exc:
        raise _fail(exc) from None
    if stopped:
        _out.print(f"stopped Kafka on port {port}")
    else:
        _out.print(f"no Kafka started by awe runs on port {port}")


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of text.")] = False,
) -> None:
    """Show the local Kafka clusters started by awe that run now."""
    try:
        clusters = status()
    except LauncherError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps([cluster.to_dict() for cluster in clusters], indent=2))
        return
    if not clusters:
        _out.print("no Kafka started by awe is running")
        return
    for cluster in clusters:
        _out.print(_describe(cluster), soft_wrap=True)
