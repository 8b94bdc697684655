"""Detached broker processes: start them, tell whether they still run, stop them.

A pid read back from a state file may have been reused by an unrelated process after a reboot, so where
``/proc`` exists a pid only counts as ours when its command line names the node's properties file.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

# Processes this interpreter started: polling them is how they get reaped, since a dead child stays a
# zombie (and os.kill(pid, 0) keeps succeeding) until its parent waits for it.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    cmd: Sequence[str], *, cwd: Path, log_file: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Starts ``cmd`` in its own session, detached from our terminal, output appended to ``log_file``
    (with ``env`` as its environment when given, else ours)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        # start_new_session: Ctrl-C in the shell that ran `awe kafka up` must not reach the broker.
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    _children[proc.pid] = proc
    return proc


def alive(pid: int, marker: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, when ``marker`` is given, has it in its command line."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    proc = Path("/proc") / str(pid)
    if proc.parent.is_dir():
        try:
            stat = (proc / "stat").read_text(encoding="utf-8", errors="replace")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        # The state follows the parenthesised command name, which may itself contain spaces.
        if stat.rpartition(")")[2].split()[:1] == ["Z"]:
            return False
        return marker is None or marker in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(pids: Iterable[tuple[int, str | None]], *, timeout: float) -> list[int]:
    """SIGTERM to each (pid, marker) that is alive, wait up to ``timeout``, then SIGKILL the rest.

    Returns the pids that were running when called.
    """
    running = [(pid, marker) for pid, marker in pids if alive(pid, marker)]
    for pid, _ in running:
        _signal(pid, signal.SIGTERM)
    remaining = _wait_gone(running, timeout)
    for pid, _ in remaining:
        _signal(pid, signal.SIGKILL)
    _wait_gone(remaining, 10.0)
    return [pid for pid, _ in running]


def log_tail(path: Path, lines: int = 30) -> list[str]:
    """The last lines of a log file (empty when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _wait_gone(procs: list[tuple[int, str | None]], timeout: float) -> list[tuple[int, str | None]]:
    deadline = time.monotonic() + timeout
    remaining = list(procs)
    while remaining:
        remaining = [(pid, marker) for pid, marker in remaining if alive(pid, marker)]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return remaining


def _signal(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``path`` (created if missing) across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
