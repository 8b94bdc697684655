"""``awe projections``: rebuild the projections of the event store from offset 0, follow it, show them."""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from awe.cli_common import err, json_line, kafka_settings, out
from streams.admin import ensure_topics
from streams.projections import ProjectionBuilder, read_projection
from streams.topics import Role

app = typer.Typer(help="Projections of awe.events: the run list, the run index, AI usage.", no_args_is_help=True)

_ROLES = {"runs": Role.RUNS, "usage": Role.USAGE, "index": Role.RUN_INDEX}


@app.command("rebuild")
def rebuild(
    follow: Annotated[bool, typer.Option("--follow", help="then keep them current until Ctrl-C")] = False,
    publish: Annotated[bool, typer.Option(help="write them to their compacted topics")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as one JSON line")] = False,
) -> None:
    """Fold awe.events from offset 0 into the projections, showing progress and events/s."""
    config = kafka_settings()
    ensure_topics(config)
    builder = ProjectionBuilder(config)
    with Progress(
        TextColumn("folding awe.events"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=as_json,
    ) as progress:
        task = progress.add_task("fold", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        projections, stats = builder.rebuild(report)
    written = builder.publish(projections) if publish else 0
    outcome = {
        "events": stats.events,
        "seconds": round(stats.seconds, 3),
        "events_per_s": round(stats.rate),
        "runs": len(projections.runs),
        "usage_keys": len(projections.usage),
        "published": written,
        "digest": stats.digest,
    }
    if as_json:
        json_line(outcome)
    else:
        out.print(
            f"folded {stats.events:,} events in {stats.seconds:.2f}s ({stats.rate:,.0f} events/s): "
            f"{len(projections.runs):,} runs, {len(projections.usage):,} usage totals; "
            f"published {written:,} records; digest {stats.digest[:16]}",
            highlight=False,
        )
    if follow:
        stop = threading.Event()
        err.print("following awe.events; Ctrl-C stops")
        try:
            builder.follow(projections, stop)
        except KeyboardInterrupt:
            stop.set()


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="runs, usage or index")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Print a published projection."""
    role = _ROLES.get(name)
    if role is None:
        raise typer.BadParameter(f"choose one of {', '.join(_ROLES)}")
    for key, value in sorted(read_projection(kafka_settings(), role).items()):
        if as_json:
            json_line({"key": key, "value": value})
        else:
            out.print(f"{key}  {value}", highlight=False, soft_wrap=True)
