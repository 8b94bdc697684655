"""Test plumbing shared by the fixtures: a broker for the session and worker processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now, with the next one free too (KRaft's controller)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 60000 and _free(port + 100):
            return port


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def docker_engine_answers() -> bool:
    """Whether a Docker engine (not only the client) is reachable."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextmanager
def session_broker() -> Iterator[str]:
    """AWE_KAFKA_BOOTSTRAP when set; else a Kafka container where Docker runs; else ``awe kafka up``."""
    given = os.environ.get("AWE_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from streams import launcher

    port = free_port()
    cluster = launcher.up(port, ephemeral=True)
    try:
        yield cluster.bootstrap
    finally:
        launcher.down(port)


def unique_settings(bootstrap: str, **overrides: object) -> Settings:
    """Settings with a topic prefix and app id of their own, so tests never share topics or groups."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "topic_prefix": f"t{tag}.",
        "app_id": f"awe-test-{tag}",
        "partitions": 3,
        "session_timeout_s": 6.0,
        "commit_interval_s": 0.05,
        "timer_tick_s": 0.02,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWE_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"AWE_{name.upper()}"] = str(value)
    return env


class WorkerProcess:
    """``awe worker`` in a child process, with its output kept for the test's report."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("w")
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "awe", "worker", "--loglevel", "info"],
            env=settings_env(self.settings),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write(line)
            self._log.flush()
            if "Worker ready" in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the worker has its partitions and finished recovery."""
        if not self.ready.wait(timeout):
            raise TimeoutError(f"worker not ready after {timeout}s; log: {self.log_path}\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        """The last lines the worker printed."""
        return "".join(self.log_path.read_text().splitlines(keepends=True)[-lines:])

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to commit or clean up."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait; SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        self._log.close()


def wait_until(predicate: object, timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is truthy; fail with a clear message after ``timeout``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")
