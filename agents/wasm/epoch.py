"""The clock behind plugin deadlines: a thread that advances wasmtime's epoch every tick.

wasmtime checks the epoch at function entries and loop back-edges, so a call whose deadline (counted in
ticks) has passed traps with an interrupt even in a loop that never calls out; no signal, no second process.
"""

from __future__ import annotations

import math
import threading

import wasmtime


class EpochTicker:
    """Increments ``engine``'s epoch every ``tick_s`` seconds from a daemon thread, until ``stop``."""

    def __init__(self, engine: wasmtime.Engine, tick_s: float = 0.01) -> None:
        self.tick_s = tick_s
        self._engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ticks(self, deadline_s: float) -> int:
        """The epoch deadline for a call allowed ``deadline_s`` seconds; one tick more, since the current
        tick may be about to end."""
        return max(1, math.ceil(deadline_s / self.tick_s)) + 1

    @property
    def running(self) -> bool:
        """Whether the ticker thread has been started (and not stopped)."""
        return self._thread is not None

    def start(self) -> None:
        """Start ticking (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="awe-wasm-epoch", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self._engine.increment_epoch()

    def stop(self) -> None:
        """Stop ticking and wait for the thread."""
        self._stop.set()
        with self._lock:
            if self._thread is not None:
                self._thread.join(5)
                self._thread = None
