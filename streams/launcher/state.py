"""What awe knows about the clusters it started: the :class:`Cluster` record and its state files.

``$AWE_HOME/run/kafka-<port>.json`` is written as soon as a cluster's processes exist, so ``down`` and
``status`` work from any other process, and a launcher killed halfway still leaves something ``down`` can
clean up.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from streams.launcher import config, procs
from streams.launcher.maven import awe_home, kafka_version


@dataclass(frozen=True)
class Cluster:
    """A local Kafka cluster started by :func:`streams.launcher.up`.

    ``port`` is its base port (node n serves clients on port+n-1), ``bootstrap`` the comma-separated
    client addresses, ``pids`` one server process per node (only the live ones when from ``status``).
    """

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


def run_dir() -> Path:
    """Where state files and locks live."""
    return awe_home() / "run"


def state_file(port: int) -> Path:
    """The state file of the cluster on ``port`` (present or not)."""
    return run_dir() / f"kafka-{port}.json"


def write_state(cluster: Cluster) -> None:
    """Records ``cluster`` in its state file, atomically so a concurrent reader never sees half of it."""
    path = state_file(cluster.port)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cluster.to_dict() | {"kafka_version": kafka_version(), "started_at": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_state(path: Path) -> Cluster | None:
    """The cluster a state file records, or None when it is missing or unreadable."""
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


def live(cluster: Cluster) -> Cluster:
    """``cluster`` with only the pids that still run its nodes."""
    markers = [str(node.properties_file) for node in cluster.nodes]
    pids = tuple(pid for pid, marker in zip(cluster.pids, markers, strict=False) if procs.alive(pid, marker))
    return replace(cluster, pids=pids)
