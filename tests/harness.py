"""Test plumbing shared by the fixtures: a broker for the session and worker processes."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from schemas.envelope import Envelope
from schemas.state import RunState
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


@cache
def data_root() -> Path:
    """One temporary directory for the session's workers' table data, removed when the session ends."""
    root = Path(tempfile.mkdtemp(prefix="awe-test-data-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def unique_settings(bootstrap: str, **overrides: object) -> Settings:
    """Settings with a topic prefix and app id of their own, so tests never share topics or groups."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "topic_prefix": f"t{tag}.",
        "app_id": f"awe-test-{tag}",
        "data_dir": data_root(),
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

    def __init__(self, settings: Settings, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("w")
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "awe", "worker", "--loglevel", "info"],
            env={**settings_env(self.settings), **(env or {})},
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


class Engine:
    """One set of unique topics with one worker, and the calls a test needs to drive runs through it."""

    def __init__(self, settings: Settings, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        from streams.client import CommandClient
        from streams.registry import DefinitionRegistry

        self.settings = settings
        self.log_dir = log_dir
        self.env = dict(env or {})
        self.client = CommandClient(settings)
        self.registry = DefinitionRegistry(settings)
        self.workers: list[WorkerProcess] = []

    def start_worker(self, wait: bool = True) -> WorkerProcess:
        """Start one more worker process."""
        worker = WorkerProcess(self.settings, self.log_dir, self.env)
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def apply(self, definition: Mapping[str, Any]) -> int:
        """Register a definition (a dict as a user would write it); return its version."""
        from schemas.validation import validate_definition

        record, _ = self.registry.register(self.settings.tenant, validate_definition(definition))
        return record.version

    def start(self, workflow: str, inputs: dict[str, object] | None = None) -> tuple[str, int]:
        """Start a run; return its id and the offset to read its events from."""
        from schemas.commands import new_id
        from streams.reader import RunReader

        run_id = new_id()
        with RunReader(self.settings) as reader:
            offset = reader.end_offset(run_id)
        self.client.start(workflow, dict(inputs or {}), run_id=run_id)
        return run_id, offset

    def wait(
        self,
        run_id: str,
        offset: int | None = None,
        timeout: float = 30.0,
        on_event: Callable[[Envelope, RunState], None] | None = None,
    ) -> RunState:
        """Follow a run to its end and return its final state; fail if it does not end in time."""
        from streams.client import follow_run

        state = follow_run(self.settings, run_id, from_offset=offset, timeout=timeout, on_event=on_event)
        if not state.terminal:
            logs = "\n".join(w.tail() for w in self.workers)
            raise TimeoutError(f"run {run_id} still {state.status} after {timeout}s; workers:\n{logs}")
        return state

    def run(self, workflow: str, inputs: dict[str, object] | None = None, timeout: float = 30.0) -> RunState:
        """Start a run and wait for its end."""
        run_id, offset = self.start(workflow, inputs)
        return self.wait(run_id, offset, timeout)

    def events(self, run_id: str) -> list[Envelope]:
        """Every event of a run, read back from ``awe.events``."""
        from streams.reader import RunReader

        with RunReader(self.settings) as reader:
            return list(reader.events(run_id))

    def close(self) -> None:
        """Stop the workers and release clients."""
        for worker in self.workers:
            worker.stop()
        self.registry.close()
        self.client.close()


class FlakyServer:
    """A loopback HTTP server whose paths script failures: ``/fail/N/KEY`` answers 500 N times then 200,
    ``/status/CODE``, ``/slow/SECONDS``, ``/big/BYTES`` a JSON string of that many bytes, ``/echo`` returns the
    JSON it got. ``hits`` counts calls per path."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.hits: dict[str, int] = {}
        self.bodies: list[object] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                import json

                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                count = server.hits[path]
                parts = path.strip("/").split("/")
                if parts[0] == "fail" and count <= int(parts[1]):
                    self._reply(500, b'{"error": "scripted failure"}')
                elif parts[0] == "status":
                    self._reply(int(parts[1]), b'{"status": "scripted"}')
                elif parts[0] == "big":
                    self._reply(200, b'"' + b"a" * (int(parts[1]) - 2) + b'"')
                elif parts[0] == "slow":
                    time.sleep(float(parts[1]))
                    self._reply(200, b'{"slow": true}')
                else:
                    if raw:
                        server.bodies.append(json.loads(raw))
                    self._reply(
                        200, json.dumps({"path": path, "count": count, "got": json.loads(raw or b"null")}).encode()
                    )

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def read_topic(settings: Settings, topic: str, timeout: float = 10.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every committed record of a topic (all partitions) as (key, value), read to the current end."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics[topic]
        tps = [TopicPartition(topic, p, 0) for p in meta.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=timeout)[1] for tp in tps}
        consumer.assign(tps)
        out: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout
        idle = 0
        while time.monotonic() < deadline and idle < 5:
            positions = {tp.partition: tp.offset for tp in consumer.position(tps)}
            if all(positions[p] >= end for p, end in ends.items()):
                break
            msg = consumer.poll(0.2)
            if msg is None:
                idle += 1
                continue
            idle = 0
            if not msg.error():
                out.append((msg.key(), msg.value()))
        return out
    finally:
        consumer.close()


class AiServers:
    """Loopback OpenAI, Anthropic and Bedrock servers, and the environment that points a worker at them."""

    def __init__(self) -> None:
        from tests.loopback import AnthropicServer, BedrockServer, OpenAIServer

        self.openai = OpenAIServer().start()
        self.anthropic = AnthropicServer().start()
        self.bedrock = BedrockServer().start()

    def env(self) -> dict[str, str]:
        """Credentials and endpoints, as a user would set them for the real services."""
        return {
            "OPENAI_API_KEY": "sk-loopback",
            "OPENAI_BASE_URL": self.openai.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-loopback",
            "ANTHROPIC_BASE_URL": self.anthropic.base_url,
            "AWS_ACCESS_KEY_ID": "AKIDLOOPBACK",
            "AWS_SECRET_ACCESS_KEY": "loopback",
            "AWE_BEDROCK_REGION": "us-east-1",
            "AWE_BEDROCK_ENDPOINT_URL": self.bedrock.url,
        }

    def reset(self) -> None:
        """Forget scripts and recorded requests."""
        for server in (self.openai, self.anthropic, self.bedrock):
            server.reset()

    def close(self) -> None:
        """Stop the servers."""
        for server in (self.openai, self.anthropic, self.bedrock):
            server.stop()
