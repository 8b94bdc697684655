"""What a local Kafka node is told: its ports, its ``server.properties`` and its JVM command line.

Port scheme for a cluster started on ``--port P`` with N nodes (node ids 1..N, each broker+controller):
node ``n`` serves clients on ``P + n - 1`` and the KRaft controller quorum on ``P + 100 + n - 1``. So the
default 9092 uses 9092 and 9192; ``--brokers 3`` uses 9092-9094 and 9192-9194. Two clusters need base
ports at least N apart, and neither may land on the other's controller range.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from streams.launcher.exceptions import InvalidOptionsError
from streams.launcher.maven import LOG4J2_CONFIG

CONTROLLER_PORT_OFFSET = 100
DEFAULT_HEAP_SINGLE = "768m"
DEFAULT_HEAP_MULTI = "512m"
_HEAP = re.compile(r"^\d+[kKmMgG]?$")


@dataclass(frozen=True)
class Node:
    """One broker+controller process of a local cluster."""

    node_id: int
    port: int
    controller_port: int
    directory: Path

    @property
    def properties_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def server_log(self) -> Path:
        """Kafka's own log (log4j2, INFO)."""
        return self.logs_dir / "server.log"

    @property
    def stdout_log(self) -> Path:
        """The JVM's stdout and stderr: empty unless the JVM itself fails."""
        return self.logs_dir / "stdout.log"

    @property
    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()


def nodes(port: int, brokers: int, data_dir: Path) -> list[Node]:
    """The nodes of a cluster on ``port``, laid out under ``data_dir/node-<id>``."""
    return [
        Node(
            node_id=i + 1,
            port=port + i,
            controller_port=port + CONTROLLER_PORT_OFFSET + i,
            directory=data_dir / f"node-{i + 1}",
        )
        for i in range(brokers)
    ]


def ports(port: int, brokers: int) -> list[int]:
    """Every port a cluster on ``port`` listens on: brokers first, then controllers."""
    return [port + i for i in range(brokers)] + [port + CONTROLLER_PORT_OFFSET + i for i in range(brokers)]


def validate(port: int, brokers: int) -> None:
    """Refuses port and size combinations that cannot work."""
    if brokers < 1:
        raise InvalidOptionsError(f"--brokers must be at least 1, got {brokers}")
    if brokers > CONTROLLER_PORT_OFFSET:
        raise InvalidOptionsError(f"--brokers must be at most {CONTROLLER_PORT_OFFSET}, got {brokers}")
    highest = port + CONTROLLER_PORT_OFFSET + brokers - 1
    if port < 1024 or highest > 65535:
        raise InvalidOptionsError(
            f"--port {port} with --brokers {brokers} needs ports {port}-{highest}: "
            f"choose a --port between 1024 and {65535 - CONTROLLER_PORT_OFFSET - brokers + 1}"
        )


def replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min in-sync replicas) for a cluster of this size.

    3 and 2 from three nodes on, so one node can die without blocking acks=all writers; fewer nodes cannot
    hold more copies, and a 2-node cluster keeps min ISR 1 so it still takes writes with one node down.
    """
    factor = min(3, brokers)
    return factor, 2 if factor >= 3 else 1


def server_properties(node: Node, cluster_nodes: list[Node]) -> str:
    """The ``server.properties`` of one node."""
    factor, min_isr = replication(len(cluster_nodes))
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster_nodes)
    settings: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": node.data_dir,
        # Topics are created explicitly (`awe topics create`); a typo must fail, not create a topic.
        "auto.create.topics.enable": "false",
        "num.partitions": 1,
        "default.replication.factor": factor,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": factor,
        # Fewer partitions than the default 50 make the first consumer group and the first
        # transaction come up much faster, which is most of a short test's time.
        "offsets.topic.num.partitions": 10,
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 10,
        "share.coordinator.state.topic.replication.factor": factor,
        "share.coordinator.state.topic.min.isr": min_isr,
        # The default 3 s delay only helps large groups that join one member at a time.
        "group.initial.rebalance.delay.ms": 0,
        # Sized for a 2-core laptop or CI runner rather than a server.
        "num.network.threads": 2,
        "num.io.threads": 4,
        "background.threads": 4,
    }
    lines = ["# Written by `awe kafka up` on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def heap(brokers: int) -> str:
    """The JVM heap per node: ``$AWE_KAFKA_HEAP`` (e.g. ``1g``), else 768m for one node, 512m each for more."""
    value = os.environ.get("AWE_KAFKA_HEAP", "").strip()
    if not value:
        return DEFAULT_HEAP_SINGLE if brokers == 1 else DEFAULT_HEAP_MULTI
    if not _HEAP.match(value):
        raise InvalidOptionsError(f"AWE_KAFKA_HEAP={value!r} is not a JVM heap size: use e.g. 768m or 1g")
    return value


def jvm_options(node: Node, brokers: int) -> list[str]:
    """JVM flags shared by the storage formatter and the server."""
    return [
        f"-Xmx{heap(brokers)}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={node.logs_dir}",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        # Kafka logs its own shutdown; log4j's hook would close the file first and send the rest to stdout.
        "-Dlog4j2.shutdownHookEnabled=false",
        # Extra flags for whoever needs them (a debugger agent, GC logging, ...).
        *shlex.split(os.environ.get("AWE_KAFKA_JVM_OPTS", "")),
    ]


def server_command(java: str, lib: Path, node: Node, brokers: int) -> list[str]:
    """The command line of a node's server process."""
    return [java, *jvm_options(node, brokers), "-cp", f"{lib}/*", "kafka.Kafka", str(node.properties_file)]


def format_command(java: str, lib: Path, node: Node, brokers: int, cluster_id: str) -> list[str]:
    """The command line that formats a node's storage for ``cluster_id``."""
    return [
        java,
        *jvm_options(node, brokers),
        "-cp",
        f"{lib}/*",
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(node.properties_file),
    ]
