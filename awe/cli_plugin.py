"""``awe plugin``: register WASM plugins on ``awe.plugins`` and list them (see docs/plugins.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agents.wasm.host import make_engine
from agents.wasm.manifest import inspect, to_wasm
from awe.cli_common import kafka_settings
from schemas.exceptions import AweError
from schemas.plugins import PLUGIN_NAME_PATTERN
from streams.admin import ensure_topics
from streams.plugins import PluginRegistry, PluginTag, RegisteredPlugin
from streams.settings import Settings

app = typer.Typer(help="Register and list WASM plugins.", no_args_is_help=True)

_out = Console()
_err = Console(stderr=True)


def add_plugin_file(
    settings: Settings,
    path: Path,
    name: str,
    version: str | None = None,
    registry: PluginRegistry | None = None,
) -> tuple[RegisteredPlugin, PluginTag, bool]:
    """Check the module in ``path`` (``.wasm`` or ``.wat``) against the ABI and register it as ``name``.

    Returns the record, its tag and whether it was new. Raises :class:`AweError` subclasses with a code.
    A caller adding several plugins passes one ``registry`` (topics already created) for all of them.
    """
    wasm = to_wasm(path.read_bytes())
    manifest = inspect(make_engine(), wasm)
    if registry is not None:
        return registry.add(wasm, manifest, name, version)
    ensure_topics(settings)
    own = PluginRegistry(settings)
    try:
        return own.add(wasm, manifest, name, version)
    finally:
        own.close()


@app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="a module: FILE.wasm, or FILE.wat in the text format")],
    name: Annotated[str, typer.Option(help="the plugin's name, as nodes refer to it", show_default=False)],
    version: Annotated[str | None, typer.Option(help="a version label (default: the next whole number)")] = None,
) -> None:
    """Store FILE on awe.plugins under NAME@VERSION, keyed by its SHA-256, for every worker."""
    import re

    if not re.match(PLUGIN_NAME_PATTERN, name):
        _fail(f"invalid plugin name {name!r}: lower-case letters, digits, _ . - (e.g. acme.redact)")
    try:
        record, tag, created = add_plugin_file(kafka_settings(), file, name, version)
    except OSError as e:
        _fail(f"cannot read {file}: {e.strerror}")
    except AweError as e:
        _fail(f"{file}: {e.message} ({e.code})")
    note = "registered" if created else "unchanged"
    _out.print(f"{tag} sha256:{record.sha256} ({note})", highlight=False, soft_wrap=True)
    if record.manifest.imports:
        _out.print("asks for: " + ", ".join(str(i) for i in record.manifest.imports), highlight=False, soft_wrap=True)


@app.command("list")
def list_plugins() -> None:
    """List every registered name@version with its hash, size and the host functions it asks for."""
    registry = PluginRegistry(kafka_settings())
    try:
        for tag, record in registry.list():
            imports = ",".join(str(i) for i in record.manifest.imports) or "-"
            # Plain tab-separated lines, for scripts (rich would expand the tabs).
            typer.echo(f"{tag}\tsha256:{record.sha256[:12]}\t{len(record.module)} bytes\timports {imports}")
    finally:
        registry.close()


def _fail(message: str) -> None:
    _err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)
