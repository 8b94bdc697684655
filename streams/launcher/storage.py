"""A local cluster's storage: its cluster id, and formatting each node's directory once."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

from streams.launcher import config
from streams.launcher.exceptions import InvalidOptionsError, LauncherError
from streams.launcher.maven import kafka_version

_CLUSTER_FILE = "cluster.json"


def cluster_id(root: Path, brokers: int) -> str:
    """The id ``root`` was formatted with, or a new one recorded in ``root/cluster.json``.

    Refuses a directory formatted for another number of nodes, or holding Kafka data awe did not write.
    """
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


def format_nodes(java: str, lib: Path, nodes: list[config.Node], brokers: int, cluster_id: str) -> None:
    """Formats the storage of ``nodes`` for ``cluster_id`` with Kafka's StorageTool."""
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
    try:
        for node, proc in running:
            output, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                failures.append((node, proc.returncode, output.decode(errors="replace")))
    finally:
        for _, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if failures:
        node, code, text = failures[0]
        lines = text.strip().splitlines()[-20:]
        raise LauncherError(
            f"formatting Kafka storage in {node.data_dir} failed (exit {code}): "
            f"remove that directory or use another --data; see {node.server_log}",
            detail={"output": lines},
        )
