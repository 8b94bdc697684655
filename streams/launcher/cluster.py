"""Start, find and stop local Apache Kafka clusters (KRaft, every node broker+controller) without Docker.

A cluster is known by its base port. ``up`` writes ``$AWE_HOME/run/kafka-<port>.json`` as soon as its
processes exist, so ``down`` and ``status`` work from any other process, and a launcher killed halfway
still leaves something ``down`` can clean up. Data lives in ``data_dir/node-<id>/{data,logs}``.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams.launcher import config, procs
from streams.launcher.exceptions import (
    AlreadyRunningError,
    BrokerStartError,
    InvalidOptionsError,
    LauncherError,
    PortInUseError,
)
from streams.launcher.maven import awe_home, cached_jars, check_java, kafka_version, resolve_jars

Progress = Callable[[str], None]
_CLUSTER_FILE = "cluster.json"


@dataclass(frozen=True)
class Cluster:
    """A local Kafka cluster started by :func:`up`."""

    port: int
    brokers: int
    bootstrap: str
    data_dir: Path
    ephemeral: bool
    pids: tuple[int, ...]

    @property
    def nodes(self) -> list[config.Node]:
        """Its nodes, with their ports and directories."""
        return config.nodes(self.port, self.brokers, self.data_dir)

    @property
    def log_files(self) -> tuple[Path, ...]:
        """Each node's Kafka log (``server.log``)."""
        return tuple(node.server_log for node in self.nodes)

    def to_dict(self) -> dict[str, Any]:
        """The cluster as JSON-ready data (what ``awe kafka status --json`` prints)."""
        return {
            "port": self.port,
            "brokers": self.brokers,
            "bootstrap": self.bootstrap,
            "data_dir": str(self.data_dir),
            "ephemeral": self.ephemeral,
            "pids": list(self.pids),
            "controller_ports": [node.controller_port for node in self.nodes],
            "log_files": [str(path) for path in self.log_files],
        }


def up(
    port: int = 9092,
    *,
    data_dir: Path | None = None,
    ephemeral: bool = False,
    brokers: int = 1,
    wait_timeout: float = 90.0,
    progress: Progress | None = None,
) -> Cluster:
    """Starts a local cluster on 127.0.0.1 and returns once every broker serves metadata.

    ``data_dir`` keeps the data across ``down``/``up`` (default: ``$AWE_HOME/kafka/data/<port>``);
    ``ephemeral`` uses a temporary directory that ``down`` removes. When a cluster started by awe already
    runs on ``port`` with the same options it is returned as is. The processes outlive the caller; stop
    them with :func:`down`. ``progress`` is told what is happening, for a spinner.
    """
    say = progress or (lambda _message: None)
    config.validate(port, brokers)
    if ephemeral and data_dir is not None:
        raise InvalidOptionsError("--data and --ephemeral exclude each other: choose one")
    wanted_dir = data_dir.expanduser().absolute() if data_dir is not None else None
    existing = _running(port)
    if existing is not None:
        same = existing.brokers == brokers and existing.ephemeral == ephemeral
        if same and (wanted_dir is None or wanted_dir == existing.data_dir):
            return existing
        raise AlreadyRunningError(port, existing.bootstrap)

    say("checking Java")
    java = check_java()
    _check_ports(port, brokers)
    if cached_jars() is None:
        say(f"resolving Kafka {kafka_version()} jars with Maven (first run only)")
    lib = resolve_jars()

    if ephemeral:
        root = Path(tempfile.mkdtemp(prefix=f"awe-kafka-{port}-"))
    else:
        root = wanted_dir or awe_home() / "kafka" / "data" / str(port)
    nodes = config.nodes(port, brokers, root)
    started: list[subprocess.Popen[bytes]] = []
    try:
        cluster_id = _cluster_id(root, brokers)
        for node in nodes:
            node.logs_dir.mkdir(parents=True, exist_ok=True)
            node.properties_file.write_text(config.server_properties(node, nodes), encoding="utf-8")
        unformatted = [node for node in nodes if not node.formatted]
        if unformatted:
            say("formatting storage")
            _format(java, lib, unformatted, brokers, cluster_id)

        say(f"starting {brokers} Kafka node{'s' if brokers > 1 else ''}")
        for node in nodes:
            cmd = config.server_command(java, lib, node, brokers)
            started.append(procs.spawn(cmd, cwd=node.directory, log_file=node.stdout_log))
        cluster = Cluster(
            port=port,
            brokers=brokers,
            bootstrap=",".join(f"127.0.0.1:{node.port}" for node in nodes),
            data_dir=root,
            ephemeral=ephemeral,
            pids=tuple(proc.pid for proc in started),
        )
        _write_state(cluster)
        say(f"waiting for {cluster.bootstrap} to serve metadata")
        _wait_ready(cluster, started, wait_timeout)
    except BaseException as exc:
        procs.stop(((proc.pid, None) for proc in started), timeout=10.0)
        _state_file(port).unlink(missing_ok=True)
        # A broker that failed to start keeps its directory, so the log the error points at can be read.
        if ephemeral and not isinstance(exc, BrokerStartError):
            shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster


def down(port: int = 9092, *, timeout: float = 30.0) -> bool:
    """Stops the cluster started on ``port``: SIGTERM to each node, SIGKILL after ``timeout`` seconds.

    Removes its state file, and its data directory when it was ephemeral. Returns True when a process was
    stopped, False when nothing ran there.
    """
    cluster = _read_state(_state_file(port))
    if cluster is None:
        return False
    markers = [str(node.properties_file) for node in cluster.nodes]
    stopped = procs.stop(zip(cluster.pids, markers, strict=False), timeout=timeout)
    _forget(cluster)
    return bool(stopped)


def status() -> list[Cluster]:
    """The clusters started by awe that run now, by port; only live pids are listed.

    A state file whose processes are all gone is removed (with the data of an ephemeral cluster).
    """
    clusters = []
    for path in sorted(_run_dir().glob("kafka-*.json")):
        cluster = _read_state(path)
        if cluster is None:
            continue
        live = _live_pids(cluster)
        if not live:
            _forget(cluster)
            continue
        clusters.append(_replace_pids(cluster, live))
    return sorted(clusters, key=lambda c: c.port)


def _running(port: int) -> Cluster | None:
    cluster = _read_state(_state_file(port))
    if cluster is None:
        return None
    live = _live_pids(cluster)
    if not live:
        _forget(cluster)
        return None
    return _replace_pids(cluster, live)


def _live_pids(cluster: Cluster) -> tuple[int, ...]:
    markers = [str(node.properties_file) for node in cluster.nodes]
    return tuple(pid for pid, marker in zip(cluster.pids, markers, strict=False) if procs.alive(pid, marker))


def _replace_pids(cluster: Cluster, pids: tuple[int, ...]) -> Cluster:
    return Cluster(
        cluster.port, cluster.brokers, cluster.bootstrap, cluster.data_dir, cluster.ephemeral, pids
    )


def _forget(cluster: Cluster) -> None:
    _state_file(cluster.port).unlink(missing_ok=True)
    if cluster.ephemeral:
        shutil.rmtree(cluster.data_dir, ignore_errors=True)


def _check_ports(port: int, brokers: int) -> None:
    for candidate in config.ports(port, brokers):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # Like the JVM's listener: a port in TIME_WAIT after a previous broker is free to use.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError as exc:
                raise PortInUseError(candidate, port) from exc


def _cluster_id(root: Path, brokers: int) -> str:
    """The id the data directory was formatted with, or a new one (recorded in ``cluster.json``)."""
    path = root / _CLUSTER_FILE
    if path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if recorded.get("brokers") != brokers:
            raise InvalidOptionsError(
                f"{root} holds a {recorded.get('brokers')}-node cluster: "
                f"use --brokers {recorded.get('brokers')} or another --data directory"
            )
        return str(recorded["cluster_id"])
    if any(node.formatted for node in config.nodes(0, brokers, root)):
        raise InvalidOptionsError(f"{root} holds Kafka data awe did not record: use another --data directory")
    cluster_id = _new_cluster_id()
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"cluster_id": cluster_id, "brokers": brokers, "kafka_version": kafka_version()}) + "\n",
        encoding="utf-8",
    )
    return cluster_id


def _new_cluster_id() -> str:
    # Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64 without padding; like Kafka,
    # avoid a leading '-', which command-line parsers would take for an option.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _format(java: str, lib: Path, nodes: list[config.Node], brokers: int, cluster_id: str) -> None:
    # One JVM per node, all at once: each takes a couple of seconds to start.
    running = [
        (
            node,
            subprocess.Popen(
                config.format_command(java, lib, node, brokers, cluster_id),
                cwd=node.directory,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            ),
        )
        for node in nodes
    ]
    failures = []
    for node, proc in running:
        output, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failures.append((node, proc.returncode, output.decode(errors="replace")))
    if failures:
        node, code, text = failures[0]
        lines = text.strip().splitlines()[-20:]
        raise LauncherError(
            f"formatting Kafka storage in {node.data_dir} failed (exit {code}): "
            f"remove that directory or use another --data; see {node.server_log}",
            detail={"output": lines},
        )


def _wait_ready(cluster: Cluster, started: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    # log_level 0: librdkafka would print a "connection refused" line per attempt until the broker listens.
    admin = AdminClient(
        {"bootstrap.servers": cluster.bootstrap, "log_level": 0, "reconnect.backoff.max.ms": 500}
    )
    nodes = cluster.nodes
    seen = 0
    while True:
        for node, proc in zip(nodes, started, strict=True):
            if proc.poll() is not None:
                log = node.server_log if node.server_log.is_file() else node.stdout_log
                tail = procs.log_tail(log)
                raise BrokerStartError(
                    f"Kafka node {node.node_id} (port {node.port}) exited with code {proc.returncode} while "
                    f"starting: see {log}",
                    log_file=log,
                    log_tail=tail,
                )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log = nodes[0].server_log
            raise BrokerStartError(
                f"Kafka on {cluster.bootstrap} did not serve metadata for all {cluster.brokers} broker(s) "
                f"within {timeout:.0f}s ({seen} registered): see {log}",
                log_file=log,
                log_tail=procs.log_tail(log),
            )
        try:
            metadata = admin.list_topics(timeout=max(0.1, min(2.0, remaining)))
        except KafkaException:
            time.sleep(0.2)
            continue
        seen = len(metadata.brokers)
        if seen >= cluster.brokers:
            return
        time.sleep(0.2)


def _run_dir() -> Path:
    return awe_home() / "run"


def _state_file(port: int) -> Path:
    return _run_dir() / f"kafka-{port}.json"


def _write_state(cluster: Cluster) -> None:
    path = _state_file(cluster.port)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cluster.to_dict() | {"kafka_version": kafka_version(), "started_at": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    # Atomic, so a concurrent `status` never reads half a file.
    tmp.replace(path)


def _read_state(path: Path) -> Cluster | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Cluster(
            port=int(data["port"]),
            brokers=int(data["brokers"]),
            bootstrap=str(data["bootstrap"]),
            data_dir=Path(data["data_dir"]),
            ephemeral=bool(data["ephemeral"]),
            pids=tuple(int(pid) for pid in data["pids"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
