"""``awe state``, ``awe replay`` and ``awe log``: reading the event store from the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from agents.replay import replay
from awe.cli_common import EXIT_FAILED, EXIT_OK, fail, json_line, kafka_settings, out
from schemas.audit import decisions
from schemas.envelope import Envelope
from schemas.exceptions import AweError
from schemas.state import run_view
from streams.store import EventStore


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone) or a number of epoch seconds."""
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"not a time: {text!r}; give ISO 8601 (2026-11-25T10:00:00Z) or epoch seconds")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def state(
    run_id: str,
    at_seq: Annotated[int | None, typer.Option("--at-seq", min=0, help="after this event")] = None,
    at_time: Annotated[str | None, typer.Option("--at-time", help="ISO 8601 or epoch seconds")] = None,
    at_offset: Annotated[int | None, typer.Option("--at-offset", min=0, help="a record offset")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the run object of `awe run --json` as it stood")] = False,
) -> None:
    """Print a run as it stood after an event, at a time, or at an offset of its partition (now by default)."""
    if sum(x is not None for x in (at_seq, at_time, at_offset)) > 1:
        fail("give at most one of --at-seq, --at-time and --at-offset")
    when = parse_time(at_time) if at_time is not None else None
    try:
        found = EventStore(kafka_settings()).state_at(run_id, seq=at_seq, offset=at_offset, at=when)
    except AweError as e:
        fail(e.message, EXIT_FAILED)
    if found.seq == 0:
        bounded = at_seq is not None or at_time is not None or at_offset is not None
        fail(f"no events for run {run_id}" + (" at that point" if bounded else ""), EXIT_FAILED)
    view = run_view(found)
    if as_json:
        json_line(view)
        return
    out.print(f"run {run_id}: [bold]{view['status']}[/bold] after seq {found.seq}", highlight=False)
    table = Table("node", "status", "attempts", "output / error")
    for node_id, node in view["nodes"].items():
        shown = node["error"]["code"] + ": " + node["error"]["message"] if node["error"] else _short(node["output"])
        table.add_row(node_id, node["status"], str(node["attempts"]), shown)
    out.print(table)
    if view["error"] is not None:
        out.print(f"{view['error']['code']}: {view['error']['message']}", highlight=False)
    if view["outputs"] is not None:
        out.print_json(data=view["outputs"])


def replay_run(
    run_id: Annotated[str | None, typer.Argument(help="a run to read from awe.events")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="events as JSON lines (awe events --json)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as one JSON object")] = False,
) -> None:
    """Run the engine again over a run's recorded events, with no side effects, and compare.

    Exits 0 when the replay produced exactly the recorded events and 1 when it did not, listing each
    difference.
    """
    if (run_id is None) == (file is None):
        fail("give a run id or --file, not both")
    if file is not None:
        events = [Envelope.model_validate(orjson.loads(line)) for line in file.read_text().splitlines() if line]
    else:
        assert run_id is not None
        events = [r.envelope for r in EventStore(kafka_settings()).run_events(run_id)]
    if not events:
        fail(f"no events for run {run_id}", EXIT_FAILED)
    report = replay(events)
    if as_json:
        json_line(report.as_json())
    elif report.skipped:
        out.print(f"run {report.run_id}: {report.skipped}", highlight=False)
    elif report.identical:
        out.print(
            f"run {report.run_id}: replayed {report.steps} steps, {report.events} events: [green]identical[/green]",
            highlight=False,
        )
    else:
        out.print(f"run {report.run_id}: [red]{len(report.differences)} differences[/red]", highlight=False)
        for difference in report.differences:
            out.print(f"  {difference.describe()}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK if report.identical else EXIT_FAILED)


def log(
    partition: Annotated[list[int] | None, typer.Option("--partition", "-p", help="repeatable; all by default")] = None,
    from_offset: Annotated[int | None, typer.Option("--from-offset", min=0)] = None,
    from_time: Annotated[str | None, typer.Option("--from-time", help="ISO 8601 or epoch seconds")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep waiting for new events")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one envelope per line, with partition and offset")] = False,
) -> None:
    """Print the event topic (every run) from an offset, a time, or the beginning."""
    if from_offset is not None and from_time is not None:
        fail("give --from-offset or --from-time, not both")
    when = parse_time(from_time) if from_time is not None else None
    store = EventStore(kafka_settings())
    for record in store.records(partitions=partition, from_offset=from_offset, from_time=when, follow=follow):
        e = record.envelope
        if as_json:
            json_line({"partition": record.partition, "offset": record.offset, **e.model_dump(mode="json")})
        else:
            out.print(
                f"{record.partition}:{record.offset:<8} {e.time.isoformat(timespec='milliseconds')} "
                f"{e.run_id} {e.seq:>4} {e.type} {e.payload.get('node_id') or ''}".rstrip(),
                highlight=False,
            )


def _short(value: Any, limit: int = 80) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def audit(
    run_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per AI decision")] = False,
) -> None:
    """Print, for each AI decision of a run, the chain from the command that started the run to the answer."""
    events = [r.envelope for r in EventStore(kafka_settings()).run_events(run_id)]
    if not events:
        fail(f"no events for run {run_id}", EXIT_FAILED)
    start = events[0]
    found = decisions(events)
    if as_json:
        for decision in found:
            call = decision.call
            json_line(
                {
                    "run_id": run_id,
                    "seq": call.seq,
                    "node_id": call.payload["node_id"],
                    "provider": call.payload["provider"],
                    "model": call.payload["model"],
                    "usage": call.payload["usage"],
                    "cost_usd": call.payload.get("cost_usd"),
                    "principal": call.principal,
                    "chain": [
                        {
                            "seq": e.seq,
                            "type": e.type,
                            "node_id": e.payload.get("node_id"),
                            "causation_id": e.causation_id,
                            "principal": e.principal,
                            "time": e.time.isoformat(),
                        }
                        for e in decision.chain
                    ],
                }
            )
        return
    workflow = f"{start.payload.get('workflow')} v{start.payload.get('version')}"
    out.print(
        f"run {run_id}: {workflow}, tenant {start.tenant_id}, started by {start.principal or 'an unknown principal'} "
        f"(command {start.causation_id}, correlation {start.correlation_id})",
        highlight=False,
        soft_wrap=True,
    )
    if not found:
        out.print("no AI decisions", highlight=False)
    for decision in found:
        p = decision.call.payload
        cost = f"${p['cost_usd']:.6f}" if p.get("cost_usd") is not None else "cost unknown"
        messages = p["request"]["messages"]
        out.print(
            f"AI decision at seq {decision.call.seq}, node {p['node_id']} attempt {p['attempt']}: {p['provider']} "
            f"{p['model']}, {p['usage']['input_tokens']} in / {p['usage']['output_tokens']} out tokens, {cost}"
            + (" (simulated)" if p.get("simulated") else ""),
            highlight=False,
            soft_wrap=True,
        )
        out.print(f"  asked: {_short(messages[-1]['content'] if messages else '', 100)}", highlight=False)
        out.print(f"  answered: {_short(p['answer'], 100)}", highlight=False)
        links = [f"command {decision.chain[0].causation_id} by {decision.chain[0].principal or '?'}"]
        links += [
            f"seq {e.seq} {e.type}" + (f" {e.payload['node_id']}" if e.payload.get("node_id") else "")
            for e in decision.chain
        ]
        out.print("  chain: " + " -> ".join(links), highlight=False, soft_wrap=True)
