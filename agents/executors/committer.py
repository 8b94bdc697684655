"""The exactly-once executor's committer: a thread that commits soon after each finished task.

A transaction costs the broker and the worker about the same whatever it holds, and tasks that finish
while one commits go together in the next (a group commit). A lone task is committed at once; after a
commit that answered several, the committer gathers for a moment first, as a busy executor will have more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import KafkaException

log = logging.getLogger("awe.executor")


class Committer:
    """Calls ``commit`` on a thread of its own after each ``wake``, and at least every ``idle_s``.

    ``commit`` returns how many tasks its transaction answered. One that raises ``KafkaException`` (no new
    producer could be had: the broker is away) is logged and called again ``idle_s`` later; what it held
    stays with the caller, so nothing is lost and the executor does not stall for good.
    """

    def __init__(self, name: str, commit: Callable[[], int], *, gather_s: float, idle_s: float) -> None:
        self._commit = commit
        self._gather_s = gather_s
        self._idle_s = idle_s
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """Say that a task finished; callable from any thread."""
        self._wake.set()

    def close(self) -> None:
        """Stop the thread and wait for it (a commit under way ends first); the caller commits what is left."""
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        gather = False
        while not self._closing.is_set():
            if self._wake.wait(self._idle_s):
                if gather:
                    self._closing.wait(self._gather_s)
                self._wake.clear()
            try:
                gather = self._commit() > 1
            except KafkaException as exc:
                log.warning("%s: a commit failed (%s); it is tried again", self._thread.name, exc.args[0])
                gather = False
                self._closing.wait(self._idle_s)
