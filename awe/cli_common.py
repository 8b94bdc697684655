"""What every ``awe`` command shares: the consoles, the exit codes, and how failures and JSON are printed."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from schemas.state import RunState, run_view
from streams.admin import check_broker
from streams.exceptions import BrokerUnavailableError
from streams.settings import Settings

# soft_wrap: a long line stays one line (a command to copy, a path), in a terminal and in a log file alike.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT = 0, 1, 2, 3


def settings() -> Settings:
    """The settings from the environment (``AWE_*``); a bad value exits 2 naming the variable."""
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(
            f"AWE_{'_'.join(str(part) for part in problem['loc']).upper()}={problem.get('input')!r}: {problem['msg']}"
            for problem in e.errors()
        )
        fail(f"invalid setting: {escape(problems)}")


def kafka_settings() -> Settings:
    """:func:`settings`, once the broker has answered; else one line saying what to do, and exit 1."""
    current = settings()
    try:
        check_broker(current)
    except BrokerUnavailableError as e:
        fail(e.message, EXIT_FAILED)
    return current


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print one error line on stderr and exit with ``code``."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def json_line(value: Any) -> None:
    """Print ``value`` as one line of JSON on stdout."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def parse_inputs(pairs: list[str], inputs_json: str | None) -> dict[str, Any]:
    """Inputs from ``--inputs-json`` and ``--input k=v`` pairs (a value is JSON when it parses as JSON)."""
    inputs: dict[str, Any] = {}
    if inputs_json:
        try:
            loaded = orjson.loads(inputs_json)
        except orjson.JSONDecodeError as e:
            fail(f"--inputs-json is not JSON: {e}")
        if not isinstance(loaded, dict):
            fail("--inputs-json must be a JSON object")
        inputs.update(loaded)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            fail(f"--input wants k=v, got {pair!r}")
        try:
            inputs[name] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            inputs[name] = raw
    return inputs


def report_run(state: RunState, as_json: bool) -> NoReturn:
    """Print a run as ``awe run`` does and exit 0 (succeeded), 1 (failed, cancelled, rejected) or 3 (running)."""
    view = run_view(state)
    if as_json:
        json_line(view)
    else:
        out.print_json(data=view)
    if state.status == "succeeded":
        raise typer.Exit(EXIT_OK)
    if state.terminal:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_TIMEOUT)
