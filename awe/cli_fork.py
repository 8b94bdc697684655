"""``awe fork`` and ``awe diff``: run a recorded run again from one node, and compare two runs."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from awe.cli_common import EXIT_FAILED, err, fail, json_line, kafka_settings, out, parse_inputs, report_run
from awe.progress import EventPrinter
from schemas.commands import new_id
from schemas.exceptions import AweError
from schemas.fork import plan_fork
from schemas.state import RunState, fold
from streams.client import CommandClient, follow_run
from streams.reader import RunReader
from streams.store import EventStore


def fork(
    run_id: Annotated[str, typer.Argument(help="the parent run")],
    from_node: Annotated[str, typer.Option("--from-node", help="run this node and everything downstream again")],
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="nodes.X.field=value (value parsed as JSON if it can be)")
    ] = None,
    input: Annotated[list[str] | None, typer.Option("--input", "-i", help="k=v: override an input")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the new run until it ends")] = False,
    timeout: Annotated[float | None, typer.Option(help="with --wait: give up after S seconds (exit 3)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the new run as one JSON line")] = False,
) -> None:
    """Start a new run that reuses the parent's recorded results for every node not downstream of --from-node.

    The parent's log records the fork and the child's log names its parent. Exit codes as for `awe run`.
    """
    config = kafka_settings()
    parent = EventStore(config).state_at(run_id)
    if parent.seq == 0:
        fail(f"no events for run {run_id}", EXIT_FAILED)
    try:
        plan = plan_fork(
            parent, from_node, changes=parse_inputs(sets or [], None), inputs=parse_inputs(input or [], None)
        )
    except AweError as e:
        fail(e.message)
    client = CommandClient(config, tenant_id=parent.tenant_id)
    child_id = None
    start_offset = None
    if wait:
        child_id = new_id()
        with RunReader(config) as reader:
            start_offset = reader.end_offset(child_id)
    command = client.fork(
        parent,
        from_node=from_node,
        definition=plan.definition,
        inputs=plan.inputs,
        reused=plan.reused,
        run_id=child_id,
    )
    if not as_json:
        err.print(
            f"forked {run_id} from {from_node}: reusing {', '.join(plan.reused) or 'nothing'}; "
            f"running {', '.join(plan.rerun)}",
            highlight=False,
        )
    if not wait:
        if as_json:
            json_line({"run_id": command.run_id, "status": "running", "outputs": None, "nodes": {}})
        else:
            out.print(command.run_id)
        return
    printer = None if as_json else EventPrinter(err)
    state = follow_run(
        config,
        command.run_id,
        from_offset=start_offset,
        timeout=timeout,
        on_event=printer.on_event if printer else None,
    )
    report_run(state, as_json)


def diff(
    run_a: Annotated[str, typer.Argument(help="a run")],
    run_b: Annotated[str, typer.Argument(help="another run (a fork of it, say)")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Compare two runs node by node: status, output, tokens and cost."""
    config = kafka_settings()
    store = EventStore(config)
    sides = []
    for run_id in (run_a, run_b):
        events = [r.envelope for r in store.run_events(run_id)]
        if not events:
            fail(f"no events for run {run_id}", EXIT_FAILED)
        sides.append((fold(run_id, events), _node_usage(events)))
    (a, usage_a), (b, usage_b) = sides
    nodes = list(dict.fromkeys([*a.nodes, *b.nodes]))
    rows = {node_id: _compare(node_id, a, b, usage_a, usage_b) for node_id in nodes}
    if as_json:
        json_line({"a": run_a, "b": run_b, "nodes": rows})
        return
    out.print(f"{run_a} -> {run_b}", highlight=False)
    for node_id, row in rows.items():
        left, right = row["a"], row["b"]
        output = (
            "same output" if row["same_output"] else f"output {_short(left['output'])} -> {_short(right['output'])}"
        )
        reused = f" (reused from {right['reused_from']})" if right["reused_from"] else ""
        out.print(
            f"  {node_id}: {_pair(left['status'], right['status'])}{reused}; {output}; "
            f"tokens {_pair(left['tokens'], right['tokens'])}; "
            f"cost {_pair(_money(left['cost_usd']), _money(right['cost_usd']))}",
            highlight=False,
            soft_wrap=True,
        )


def _node_usage(events: list[Any]) -> dict[str, dict[str, Any]]:
    usage: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.type == "AICallRecorded":
            node = usage.setdefault(e.payload["node_id"], {"tokens": 0, "cost_usd": None, "calls": 0})
            node["calls"] += 1
            node["tokens"] += e.payload["usage"]["input_tokens"] + e.payload["usage"]["output_tokens"]
            if e.payload.get("cost_usd") is not None:
                node["cost_usd"] = (node["cost_usd"] or 0.0) + e.payload["cost_usd"]
        elif e.type == "NodeSucceeded" and e.payload.get("reused_from"):
            usage.setdefault(e.payload["node_id"], {"tokens": 0, "cost_usd": None, "calls": 0})["reused_from"] = (
                e.payload["reused_from"]
            )
    return usage


def _compare(
    node_id: str, a: RunState, b: RunState, usage_a: dict[str, dict[str, Any]], usage_b: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    def side(state: RunState, usage: dict[str, dict[str, Any]]) -> dict[str, Any]:
        node = state.nodes.get(node_id)
        spent = usage.get(node_id, {})
        return {
            "status": node.status if node else None,
            "output": node.output if node else None,
            "tokens": spent.get("tokens", 0),
            "cost_usd": spent.get("cost_usd"),
            "calls": spent.get("calls", 0),
            "reused_from": spent.get("reused_from"),
        }

    left, right = side(a, usage_a), side(b, usage_b)
    return {"a": left, "b": right, "same_output": left["output"] == right["output"]}


def _pair(a: Any, b: Any) -> str:
    return str(a) if a == b else f"{a} -> {b}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def _short(value: Any, limit: int = 40) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."
