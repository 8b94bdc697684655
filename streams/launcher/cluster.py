"""Start, find and stop local Apache Kafka clusters (KRaft, every node broker+controller) without Docker.

A cluster is known by its base port; its data lives in ``data_dir/node-<id>/{data,logs}`` and what runs is
recorded in state files (:mod:`streams.launcher.state`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from streams.launcher import config, procs, state, storage
from streams.launcher.exceptions import (
    AlreadyRunningError,
    BrokerStartError,
    InvalidOptionsError,
    PortInUseError,
)
from streams.launcher.maven import awe_home, cached_jars, check_java, kafka_version, resolve_jars
from streams.launcher.state import Cluster

__all__ = ["Cluster", "Progress", "down", "status", "up"]

Progress = Callable[[str], None]


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
    config.validate(port, brokers)
    if ephemeral and data_dir is not None:
        raise InvalidOptionsError("--data and --ephemeral exclude each other: choose one")
    wanted_dir = data_dir.expanduser().absolute() if data_dir is not None else None
    # Two launchers racing for one port: the second waits, then finds the first one's cluster.
    with procs.file_lock(state.run_dir() / "locks" / f"kafka-{port}.lock"):
        return _up(port, wanted_dir, ephemeral, brokers, wait_timeout, progress or (lambda _message: None))


def _up(
    port: int, wanted_dir: Path | None, ephemeral: bool, brokers: int, wait_timeout: float, say: Progress
) -> Cluster:
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
        cluster_id = storage.cluster_id(root, brokers)
        for node in nodes:
            node.logs_dir.mkdir(parents=True, exist_ok=True)
            node.properties_file.write_text(config.server_properties(node, nodes), encoding="utf-8")
        unformatted = [node for node in nodes if not node.formatted]
        if unformatted:
            say("formatting storage")
            storage.format_nodes(java, lib, unformatted, brokers, cluster_id)

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
        state.write_state(cluster)
        say(f"waiting for {cluster.bootstrap} to serve metadata")
        _wait_ready(cluster, started, wait_timeout)
    except BaseException as exc:
        procs.stop(((proc.pid, None) for proc in started), timeout=10.0)
        state.state_file(port).unlink(missing_ok=True)
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
    cluster = state.read_state(state.state_file(port))
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
    for path in sorted(state.run_dir().glob("kafka-*.json")):
        cluster = state.read_state(path)
        if cluster is None:
            continue
        running = state.live(cluster)
        if not running.pids:
            _forget(cluster)
            continue
        clusters.append(running)
    return sorted(clusters, key=lambda c: c.port)


def _running(port: int) -> Cluster | None:
    cluster = state.read_state(state.state_file(port))
    if cluster is None:
        return None
    running = state.live(cluster)
    if not running.pids:
        _forget(cluster)
        return None
    return running


def _forget(cluster: Cluster) -> None:
    state.state_file(cluster.port).unlink(missing_ok=True)
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


def _wait_ready(cluster: Cluster, started: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    # log_level 0: librdkafka would print a "connection refused" line per attempt until the broker listens.
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0, "reconnect.backoff.max.ms": 500})
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
            _wait_producer_ids(cluster, max(1.0, deadline - time.monotonic()))
            return
        time.sleep(0.2)


def _wait_producer_ids(cluster: Cluster, timeout: float) -> None:
    """Until the cluster hands out producer ids, for idempotent and transactional producers alike.

    A broker serves metadata before its producer id manager and transaction coordinator have loaded. An
    idempotent producer that starts then logs ``Failed to acquire idempotence PID ... Coordinator load in
    progress: retrying`` on the user's terminal (the first thing ``awe dev`` printed on a new machine).
    Initialising one transactional producer waits that out, and creates the transaction state topic that
    the first exactly-once worker would otherwise wait for.
    """
    # A new transactional id each time: a known one only has its epoch bumped, and on a restarted broker that
    # succeeds before the producer id manager can hand out a new id.
    transactional_id = f"awe-launcher-ready-{uuid.uuid4().hex}"
    probe = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": transactional_id, "log_level": 0})
    try:
        probe.init_transactions(timeout)
    except KafkaException as exc:
        log = cluster.nodes[0].server_log
        raise BrokerStartError(
            f"Kafka on {cluster.bootstrap} served metadata but handed out no producer id within {timeout:.0f}s "
            f"({exc.args[0]}): see {log}",
            log_file=log,
            log_tail=procs.log_tail(log),
        ) from exc
