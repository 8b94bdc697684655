"""A local Kafka Connect worker (distributed mode, one node) from Maven Central jars, and the sink
derivation next to it: ``up`` starts both and returns once the REST API lists the JDBC sink, ``down``
stops them, ``status`` tells what runs.

A worker is known by its REST port. Its properties, logs and the deriver's log live in
``$AWE_HOME/connect/run/<port>/``; ``$AWE_HOME/run/connect-<port>.json`` records the pids so ``down`` and
``status`` work from any process. Nothing here talks to a connector: that is :mod:`streams.connect.rest`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams.admin import ensure_topics
from streams.connect.exceptions import BrokerUnreachableError, ConnectPortInUseError, ConnectStartError
from streams.connect.jars import cached_jars, connect_version, resolve_jars
from streams.launcher import procs
from streams.launcher.maven import LOG4J2_CONFIG, check_java
from streams.settings import Settings, awe_home
from streams.topics import Catalog, Role

__all__ = ["JDBC_SINK_CLASS", "Progress", "Worker", "down", "status", "up"]

Progress = Callable[[str], None]
JDBC_SINK_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"
TEMPLATE = Path(__file__).with_name("connect-distributed.properties")
DERIVER_MODULE = "streams.connect.deriver"
HEAP = "512m"


@dataclass(frozen=True)
class Worker:
    """A Connect worker started by :func:`up`; ``pids`` are the worker's JVM and the deriver (live ones
    only when from :func:`status`)."""

    port: int
    bootstrap: str
    pids: tuple[int, ...]

    @property
    def url(self) -> str:
        """The REST API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def directory(self) -> Path:
        return awe_home() / "connect" / "run" / str(self.port)

    @property
    def properties_file(self) -> Path:
        return self.directory / "connect-distributed.properties"

    @property
    def log_file(self) -> Path:
        """Connect's own log (log4j2, INFO)."""
        return self.directory / "logs" / "server.log"

    @property
    def deriver_log(self) -> Path:
        return self.directory / "logs" / "deriver.log"

    def to_dict(self) -> dict[str, Any]:
        """The worker as JSON-ready data (what ``awe connect status --json`` prints)."""
        return {
            "port": self.port,
            "url": self.url,
            "bootstrap": self.bootstrap,
            "pids": list(self.pids),
            "log_file": str(self.log_file),
            "deriver_log": str(self.deriver_log),
        }


def up(
    settings: Settings,
    port: int = 8083,
    *,
    derive: bool = True,
    wait_timeout: float = 120.0,
    progress: Progress | None = None,
) -> Worker:
    """Starts a worker on 127.0.0.1:``port`` (and the sink deriver unless ``derive`` is False) against
    ``settings.kafka_bootstrap``; returns once the REST API lists the JDBC sink connector. When a worker
    started by awe already runs on ``port`` it is returned as is."""
    say = progress or (lambda _message: None)
    with procs.file_lock(_run_dir() / "locks" / f"connect-{port}.lock"):
        existing = _running(port)
        if existing is not None:
            return existing
        say("checking Java")
        java = check_java()
        _check_port(port)
        say(f"asking Kafka at {settings.kafka_bootstrap}")
        _check_broker(settings.kafka_bootstrap)
        if cached_jars() is None:
            say(f"resolving Kafka Connect {connect_version()} jars with Maven (first run only)")
        lib = resolve_jars()
        # Connect would create its internal topics itself; the catalog creates them (and the sink topics)
        # with the partitions and policies awe declares.
        ensure_topics(settings)
        worker = Worker(port=port, bootstrap=settings.kafka_bootstrap, pids=())
        worker.log_file.parent.mkdir(parents=True, exist_ok=True)
        worker.properties_file.write_text(worker_properties(settings, port), encoding="utf-8")
        say("starting the Connect worker")
        started = [
            procs.spawn(
                _java_command(java, lib, worker),
                cwd=worker.directory,
                log_file=worker.directory / "logs" / "stdout.log",
            )
        ]
        try:
            if derive:
                started.append(
                    procs.spawn(
                        [sys.executable, "-m", DERIVER_MODULE],
                        cwd=worker.directory,
                        log_file=worker.deriver_log,
                        env=_deriver_env(settings),
                    )
                )
            worker = Worker(port=port, bootstrap=settings.kafka_bootstrap, pids=tuple(p.pid for p in started))
            _write_state(worker)
            say(f"waiting for {worker.url} to list the JDBC sink")
            _wait_ready(worker, started, wait_timeout)
        except BaseException:
            procs.stop(((p.pid, None) for p in started), timeout=10.0)
            _state_file(port).unlink(missing_ok=True)
            raise
    return worker


def down(port: int = 8083, *, timeout: float = 30.0) -> bool:
    """Stops the worker (and deriver) started on ``port``; True when a process was stopped."""
    worker = _read_state(_state_file(port))
    if worker is None:
        return False
    stopped = procs.stop(zip(worker.pids, _markers(worker), strict=False), timeout=timeout)
    _state_file(port).unlink(missing_ok=True)
    return bool(stopped)


def status() -> list[Worker]:
    """The workers started by awe that run now, by port; a state file with no live process is removed."""
    workers = []
    for path in sorted(_run_dir().glob("connect-*.json")):
        worker = _read_state(path)
        if worker is None:
            continue
        running = _live(worker)
        if not running.pids:
            path.unlink(missing_ok=True)
            continue
        workers.append(running)
    return sorted(workers, key=lambda w: w.port)


def worker_properties(settings: Settings, port: int) -> str:
    """The worker's properties: the docker-compose template with this machine's broker, port and topics."""
    catalog = Catalog(settings)
    overrides = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"{settings.topic_prefix}connect",
        "listeners": f"http://127.0.0.1:{port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(port),
        "config.storage.topic": catalog.name(Role.CONNECT_CONFIGS),
        "offset.storage.topic": catalog.name(Role.CONNECT_OFFSETS),
        "status.storage.topic": catalog.name(Role.CONNECT_STATUS),
        "config.storage.replication.factor": str(settings.replication_factor),
        "offset.storage.replication.factor": str(settings.replication_factor),
        "status.storage.replication.factor": str(settings.replication_factor),
    }
    lines = ["# Written by `awe connect up` from streams/connect/connect-distributed.properties."]
    for line in TEMPLATE.read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        # The jars are all on the classpath here; plugin.path is for the Docker image's layout.
        if line.startswith("#") or not line.strip() or key in overrides or key == "plugin.path":
            continue
        lines.append(line)
    lines += [f"{key}={value}" for key, value in overrides.items()]
    return "\n".join(lines) + "\n"


def _java_command(java: str, lib: Path, worker: Worker) -> list[str]:
    return [
        java,
        f"-Xmx{HEAP}",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dkafka.logs.dir={worker.log_file.parent}",
        "-cp",
        f"{lib}/*",
        "org.apache.kafka.connect.cli.ConnectDistributed",
        str(worker.properties_file),
    ]


def _deriver_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    # The deriver imports the same code as this launcher, whatever the working directory and install.
    source_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    env.update(
        {
            "AWE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "AWE_TOPIC_PREFIX": settings.topic_prefix,
            "AWE_PARTITIONS": str(settings.partitions),
        }
    )
    return env


def _check_broker(bootstrap: str) -> None:
    # log_level 0: librdkafka would print a line per refused connection.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=5)
    except KafkaException as exc:
        raise BrokerUnreachableError(bootstrap) from exc


def _check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConnectPortInUseError(port) from exc


def _wait_ready(worker: Worker, started: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for proc in started:
            if proc.poll() is not None:
                log = worker.log_file if proc is started[0] else worker.deriver_log
                what = "Connect worker" if proc is started[0] else "sink deriver"
                raise ConnectStartError(
                    f"the {what} exited with code {proc.returncode} while starting: see {log}",
                    log_file=log,
                    log_tail=procs.log_tail(log),
                )
        if JDBC_SINK_CLASS in _plugins(worker.url):
            return
        if time.monotonic() >= deadline:
            raise ConnectStartError(
                f"Kafka Connect on {worker.url} did not list {JDBC_SINK_CLASS} within {timeout:.0f}s: "
                f"see {worker.log_file}",
                log_file=worker.log_file,
                log_tail=procs.log_tail(worker.log_file),
            )
        time.sleep(0.5)


def _plugins(url: str) -> set[str]:
    try:
        with urllib.request.urlopen(f"{url}/connector-plugins", timeout=2) as response:
            return {str(plugin["class"]) for plugin in json.loads(response.read())}
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError):
        return set()


def _run_dir() -> Path:
    return awe_home() / "run"


def _state_file(port: int) -> Path:
    return _run_dir() / f"connect-{port}.json"


def _markers(worker: Worker) -> list[str | None]:
    # A pid only counts as ours when its command line names our properties file or the deriver module.
    return [str(worker.properties_file), DERIVER_MODULE]


def _write_state(worker: Worker) -> None:
    path = _state_file(worker.port)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(worker.to_dict() | {"started_at": time.time()}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _read_state(path: Path) -> Worker | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Worker(
            port=int(data["port"]), bootstrap=str(data["bootstrap"]), pids=tuple(int(p) for p in data["pids"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _live(worker: Worker) -> Worker:
    pids = tuple(pid for pid, marker in zip(worker.pids, _markers(worker), strict=False) if procs.alive(pid, marker))
    return Worker(port=worker.port, bootstrap=worker.bootstrap, pids=pids)


def _running(port: int) -> Worker | None:
    worker = _read_state(_state_file(port))
    if worker is None:
        return None
    running = _live(worker)
    if running.pids == worker.pids:
        return running
    # Half of it is gone (the JVM or the deriver): stop the rest, so ``up`` starts both afresh.
    procs.stop(zip(worker.pids, _markers(worker), strict=False), timeout=10.0)
    _state_file(port).unlink(missing_ok=True)
    return None
