"""The ``awe top`` command."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

import httpx
import typer
from rich.live import Live
from rich.table import Table

from awe.cli_common import fail, json_line, out, settings
from awe.top import Figures, figures, scrape


def top(
    url: Annotated[list[str] | None, typer.Option("--url", help="a /metrics URL (repeatable)")] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="seconds between refreshes")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="print one refresh and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="with --once: one JSON line")] = False,
) -> None:
    """A live view of runs/s, success rate, lag, tokens and cost per minute, read from the metrics endpoints."""
    config = settings()
    urls = url or ([f"http://{config.metrics_host}:{config.metrics_port}/metrics"] if config.metrics_port else [])
    if not urls:
        fail("give --url http://HOST:PORT/metrics, or set AWE_METRICS_PORT")
    try:
        before = scrape(urls)
        if once:
            time.sleep(interval)
            shown = figures(before, scrape(urls))
            if as_json:
                json_line(asdict(shown))
            else:
                out.print(_table(shown, urls))
            return
        with Live(_table(None, urls), refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                after = scrape(urls)
                live.update(_table(figures(before, after), urls))
                before = after
    except httpx.HTTPError as err:
        fail(f"cannot read {', '.join(urls)}: {err}")
    except KeyboardInterrupt:
        return


def _table(shown: Figures | None, urls: list[str]) -> Table:
    table = Table("figure", "value", title=f"awe top: {len(urls)} endpoint(s)")
    if shown is None:
        table.add_row("waiting for a second scrape", "")
        return table
    rate = f"{shown.success_rate:.1%}" if shown.success_rate is not None else "no run finished"
    table.add_row("runs finished / s", f"{shown.runs_per_s:.2f}")
    table.add_row("success rate", rate)
    table.add_row("consumer lag (records)", f"{shown.lag:,.0f}")
    table.add_row("tokens / min", f"{shown.tokens_per_min:,.0f}")
    table.add_row("cost / min (USD)", f"{shown.cost_per_min:.6f}")
    table.add_row("runs finished (total)", f"{shown.runs_finished:,.0f}")
    table.add_row("tokens (total)", f"{shown.tokens:,.0f}")
    table.add_row("cost (USD, total)", f"{shown.cost_usd:.6f}")
    return table
