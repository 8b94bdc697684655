"""`awe plugin add|list` as a user runs them, against the session's broker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from streams.settings import Settings
from tests.agents.wasm.plugins import ECHO, HOSTILE, MALFORMED
from tests.harness import REPO, settings_env


def awe(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "awe", *args],
        env=settings_env(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_add_numbers_versions_and_list_shows_them(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory()
    name = f"echo-{uuid.uuid4().hex[:6]}"
    first = tmp_path / "echo.wat"
    first.write_text(ECHO)
    second = tmp_path / "echo2.wat"
    second.write_text(ECHO.replace("(i32.const 1024)", "(i32.const 2048)"))

    added = awe(settings, "plugin", "add", str(first), "--name", name)
    assert added.returncode == 0, added.stderr
    assert f"{name}@1 sha256:" in added.stdout and "(registered)" in added.stdout
    again = awe(settings, "plugin", "add", str(first), "--name", name)
    assert f"{name}@1" in again.stdout and "(unchanged)" in again.stdout
    newer = awe(settings, "plugin", "add", str(second), "--name", name)
    assert f"{name}@2" in newer.stdout
    pinned = awe(settings, "plugin", "add", str(first), "--name", name, "--version", "2")
    assert pinned.returncode == 2 and f"{name}@2 already names sha256:" in pinned.stderr

    listed = awe(settings, "plugin", "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if line.startswith(f"{name}@")]
    assert [line.split("\t")[0] for line in lines] == [f"{name}@1", f"{name}@2"]


def test_add_refuses_what_is_not_a_plugin_with_the_reason(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory()
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(MALFORMED)
    done = awe(settings, "plugin", "add", str(bad), "--name", "bad")
    assert done.returncode == 2 and "not a valid WebAssembly module" in done.stderr and "invalid_module" in done.stderr
    no_run = tmp_path / "norun.wat"
    no_run.write_text('(module (memory (export "memory") 1))')
    done = awe(settings, "plugin", "add", str(no_run), "--name", "norun")
    assert done.returncode == 2 and "export a function run(i32, i32) -> i64" in done.stderr


def test_add_records_the_imports_a_plugin_asks_for(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory()
    asking = tmp_path / "asking.wat"
    asking.write_text(HOSTILE["unknown_import"][0])
    done = awe(settings, "plugin", "add", str(asking), "--name", "asking")
    assert done.returncode == 0, done.stderr
    assert "asks for: env.getenv" in done.stdout
