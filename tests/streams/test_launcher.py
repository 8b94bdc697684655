"""The local Kafka launcher, against real Java processes on ports 29xxx.

Every test that starts a cluster registers its port with the ``started`` fixture first, so the cluster
is stopped even when an assertion fails halfway.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, NewTopic  # type: ignore[attr-defined]
from typer.testing import CliRunner

from awe.cli_kafka import app
from streams import launcher
from streams.launcher import config, maven, procs

pytestmark = pytest.mark.timeout(240)

# Base ports of the clusters below; each also takes base+100.. for its controllers.
EPHEMERAL_PORT = 29092
PERSISTENT_PORT = 29300
BUSY_PORT = 29500
NO_JAVA_PORT = 29550
SLOW_PORT = 29560
THREE_NODE_PORT = 29700


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Ports to stop after the test, whatever happened."""
    ports: list[int] = []
    yield ports
    for port in ports:
        launcher.down(port, timeout=20.0)


def _running_ports() -> set[int]:
    return {cluster.port for cluster in launcher.status()}


def _create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions)], operation_timeout=30).values():
        future.result(timeout=30)


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _assert_hands_out_producer_ids(bootstrap: str) -> None:
    """An idempotent producer started as ``up`` returns has nothing to warn about (no coordinator loading)."""
    probe = (
        "from confluent_kafka import Producer; "
        f"p = Producer({{'bootstrap.servers': '{bootstrap}', 'enable.idempotence': True}}); p.poll(3)"
    )
    started_now = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert started_now.returncode == 0 and started_now.stderr == "", started_now.stderr


def _without_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)


def test_ephemeral_cluster_runs_transactions_and_goes_away(started: list[int]) -> None:
    started.append(EPHEMERAL_PORT)
    cluster = launcher.up(EPHEMERAL_PORT, ephemeral=True)
    assert cluster.bootstrap == f"127.0.0.1:{EPHEMERAL_PORT}"
    assert cluster.ephemeral
    assert cluster.brokers == 1
    assert len(cluster.pids) == 1
    assert cluster.data_dir.is_dir()
    # The broker logs to a file in its data dir, not to the captured stdout.
    assert cluster.log_files[0].stat().st_size > 0
    assert cluster.nodes[0].stdout_log.stat().st_size == 0

    _assert_hands_out_producer_ids(cluster.bootstrap)

    # Asking again for the same thing returns the running cluster instead of failing.
    assert launcher.up(EPHEMERAL_PORT, ephemeral=True).pids == cluster.pids

    topic = f"launcher-{uuid.uuid4().hex[:8]}"
    _create_topic(cluster.bootstrap, topic)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": f"tx-{topic}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"run-1", value=b"hello")
    producer.commit_transaction(30)
    del producer
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        record = None
        while record is None and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                record = message
    finally:
        consumer.close()
    assert record is not None
    assert (record.key(), record.value()) == (b"run-1", b"hello")

    listed = {c.port: c for c in launcher.status()}
    assert listed[EPHEMERAL_PORT].pids == cluster.pids
    assert listed[EPHEMERAL_PORT].data_dir == cluster.data_dir

    assert launcher.down(EPHEMERAL_PORT) is True
    assert EPHEMERAL_PORT not in _running_ports()
    assert not any(procs.alive(pid) for pid in cluster.pids)
    assert not cluster.data_dir.exists()
    assert launcher.down(EPHEMERAL_PORT) is False


def test_data_dir_survives_down_and_up(started: list[int], tmp_path: Path) -> None:
    data = tmp_path / "kafka-data"
    started.append(PERSISTENT_PORT)
    cluster = launcher.up(PERSISTENT_PORT, data_dir=data)
    assert not cluster.ephemeral
    assert cluster.data_dir == data
    _create_topic(cluster.bootstrap, "kept", partitions=2)
    assert launcher.down(PERSISTENT_PORT) is True
    assert PERSISTENT_PORT not in _running_ports()
    assert (data / "node-1" / "data" / "meta.properties").is_file()

    again = launcher.up(PERSISTENT_PORT, data_dir=data)
    _assert_hands_out_producer_ids(again.bootstrap)  # a restart loads its coordinators again
    topics = AdminClient({"bootstrap.servers": again.bootstrap}).list_topics(timeout=10).topics
    assert "kept" in topics
    assert len(topics["kept"].partitions) == 2

    # The data dir remembers its size; a 3-node start on it must be refused, not corrupt it.
    assert launcher.down(PERSISTENT_PORT) is True
    with pytest.raises(launcher.InvalidOptionsError, match="--brokers 1"):
        launcher.up(PERSISTENT_PORT, data_dir=data, brokers=3)


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", BUSY_PORT))
        busy.listen()
        with pytest.raises(launcher.PortInUseError) as caught:
            launcher.up(BUSY_PORT, ephemeral=True)
        message = str(caught.value)
        assert f"port {BUSY_PORT} is already in use" in message
        assert "--port" in message
        assert "\n" not in message

        result = CliRunner().invoke(app, ["up", "--port", str(BUSY_PORT), "--ephemeral"])
        assert result.exit_code == 2
        assert f"port {BUSY_PORT} is already in use" in result.output
    assert BUSY_PORT not in _running_ports()


def test_controller_port_in_use_is_named() -> None:
    controller = BUSY_PORT + config.CONTROLLER_PORT_OFFSET
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", controller))
        busy.listen()
        with pytest.raises(launcher.PortInUseError, match=f"port {controller} "):
            launcher.up(BUSY_PORT, ephemeral=True)


def test_missing_java_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _without_java(monkeypatch, tmp_path)
    with pytest.raises(launcher.JavaMissingError) as caught:
        launcher.up(NO_JAVA_PORT, ephemeral=True)
    assert "install Java 17+ (apt-get install openjdk-17-jre-headless)" in str(caught.value)
    assert "\n" not in str(caught.value)

    result = CliRunner().invoke(app, ["up", "--port", str(NO_JAVA_PORT), "--ephemeral"])
    assert result.exit_code == 2
    assert "install Java 17+" in result.output
    assert NO_JAVA_PORT not in _running_ports()


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _without_java(monkeypatch, tmp_path)
    _write_executable(tmp_path / "bin" / "java", "#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    with pytest.raises(launcher.JavaTooOldError, match=r"Java 11, Kafka 4\.x needs Java 17"):
        launcher.up(NO_JAVA_PORT, ephemeral=True)


def test_java_8_version_scheme_is_read(tmp_path: Path) -> None:
    java = tmp_path / "java"
    _write_executable(java, "#!/bin/sh\necho 'java version \"1.8.0_402\"' >&2\n")
    assert maven.java_major(str(java)) == 8


def test_missing_maven_is_reported_when_jars_are_not_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_java = shutil.which("java")
    assert real_java is not None, "these tests need Java 17+ on PATH"
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    _without_java(monkeypatch, tmp_path)
    # Java present, Maven absent, nothing cached.
    (tmp_path / "bin" / "java").symlink_to(real_java)
    with pytest.raises(launcher.MavenMissingError, match="install Maven"):
        launcher.resolve_jars()


def test_jars_are_resolved_once_and_marked_complete(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fake ``mvn`` stands in for Maven: what is checked here is the caching around it."""
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    _write_executable(
        bin_dir / "mvn",
        "#!/bin/sh\n"
        f"echo run >> {calls}\n"
        'for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac; done\n'
        'if [ -n "$FAIL_MVN" ]; then echo "[ERROR] no network" >&2; exit 1; fi\n'
        'touch "$out/kafka_2.13-4.1.1.jar"\n',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    monkeypatch.setenv("FAIL_MVN", "1")
    with pytest.raises(launcher.MavenFailedError) as caught:
        launcher.resolve_jars()
    assert "no network" in caught.value.detail["output"]
    assert maven.cached_jars() is None

    monkeypatch.delenv("FAIL_MVN")
    lib = launcher.resolve_jars()
    assert (lib / "kafka_2.13-4.1.1.jar").is_file()
    assert lib == tmp_path / "home" / "kafka" / launcher.kafka_version() / "lib"
    assert launcher.resolve_jars() == lib
    assert calls.read_text().count("run") == 2

    # A lib dir without its marker (an interrupted copy) is resolved again.
    (lib / ".awe-complete").unlink()
    launcher.resolve_jars()
    assert calls.read_text().count("run") == 3


def test_start_timeout_points_at_the_log_and_cleans_up() -> None:
    with pytest.raises(launcher.BrokerStartError) as caught:
        launcher.up(SLOW_PORT, ephemeral=True, wait_timeout=0.5)
    error = caught.value
    # The ephemeral directory is kept so the log the message names can be read; remove it here.
    data_dir = error.log_file.parents[2]
    try:
        assert "did not serve metadata" in error.message
        assert str(error.log_file) in error.message
        assert "\n" not in error.message
        assert SLOW_PORT not in _running_ports()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", SLOW_PORT))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _describe_topic_configs(admin: AdminClient, topic: str, deadline: float) -> dict[str, ConfigEntry]:
    """Describe a new topic's configs, retrying while the answering broker does not know it yet.

    Every broker learns of a new topic from the controller on its own schedule, so the broker
    that answers may lag the one whose metadata showed full ISRs.
    """
    resource = ConfigResource("topic", topic)
    while True:
        try:
            configs: dict[str, ConfigEntry] = admin.describe_configs([resource])[resource].result(timeout=10)
            return configs
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def test_three_node_cluster(started: list[int]) -> None:
    started.append(THREE_NODE_PORT)
    cluster = launcher.up(THREE_NODE_PORT, ephemeral=True, brokers=3)
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{THREE_NODE_PORT + i}" for i in range(3))
    assert len(cluster.pids) == 3
    properties = cluster.nodes[2].properties_file.read_text()
    voters = ",".join(f"{i + 1}@127.0.0.1:{THREE_NODE_PORT + 100 + i}" for i in range(3))
    assert f"controller.quorum.voters={voters}" in properties

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    metadata = admin.list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]

    # No replication factor given: the broker default (3) applies.
    _create_topic(cluster.bootstrap, "replicated", partitions=3)
    deadline = time.monotonic() + 30
    while True:
        # Right after creation the metadata may still list no partitions, or partial ISRs.
        partitions = list(admin.list_topics("replicated", timeout=10).topics["replicated"].partitions.values())
        ready = len(partitions) == 3 and all(len(p.isrs) == 3 for p in partitions)
        if ready or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [sorted(p.replicas) for p in partitions] == [[1, 2, 3]] * 3
    assert [sorted(p.isrs) for p in partitions] == [[1, 2, 3]] * 3
    configs = _describe_topic_configs(admin, "replicated", deadline=time.monotonic() + 30)
    assert configs["min.insync.replicas"].value == "2"
    # Dropped before the cluster goes, so librdkafka does not log the brokers leaving.
    del admin

    assert launcher.down(THREE_NODE_PORT) is True
    assert not any(procs.alive(pid) for pid in cluster.pids)
    assert THREE_NODE_PORT not in _running_ports()


def test_cli_status_and_down_when_nothing_runs() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["down", "--port", "29990"])
    assert result.exit_code == 0
    assert "no Kafka started by awe runs on port 29990" in result.output
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0
    assert isinstance(json.loads(result.stdout), list)
