"""What every ``awe`` command shares: the consoles, the exit codes, and how failures and JSON are printed."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import orjson
import typer
from rich.console import Console

from streams.settings import Settings

out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT = 0, 1, 2, 3


def settings() -> Settings:
    """The settings from the environment (``AWE_*``)."""
    return Settings()


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print one error line on stderr and exit with ``code``."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def json_line(value: Any) -> None:
    """Print ``value`` as one line of JSON on stdout."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()
