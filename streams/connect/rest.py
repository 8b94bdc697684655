"""The connector configurations in ``streams/connect/connectors/`` and the Connect REST API calls that apply
them: ``PUT /connectors/<name>/config`` creates a connector or updates it in place, so applying twice is
harmless.

The files hold everything but where the database is; :func:`connector_configs` adds the JDBC URL and
credentials, and renames the ``awe.`` topics and the ``awe-`` connectors when the settings use another
prefix.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.connect.exceptions import ConnectApiError
from streams.settings import Settings

CONNECTORS_DIR = Path(__file__).with_name("connectors")
_DEFAULT_PREFIX = "awe."


@dataclass(frozen=True)
class Database:
    """Where the JDBC sinks write."""

    url: str
    user: str
    password: str = ""


def connector_configs(settings: Settings, database: Database) -> dict[str, dict[str, str]]:
    """Every connector of ``connectors/``, by name, ready to PUT."""
    configs: dict[str, dict[str, str]] = {}
    for path in sorted(CONNECTORS_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        config = {str(k): str(v) for k, v in data["config"].items()}
        config["topics"] = ",".join(
            settings.topic_prefix + topic.removeprefix(_DEFAULT_PREFIX) for topic in config["topics"].split(",")
        )
        config |= {
            "connection.url": database.url,
            "connection.username": database.user,
            "connection.password": database.password,
        }
        # Connect names a sink's consumer group after the connector (connect-<name>), cluster-wide: two topic
        # prefixes on one Kafka cluster must not share a group, so the name follows the prefix too.
        name = str(data["name"]).removeprefix("awe-")
        configs[f"{settings.topic_prefix.rstrip('.')}-{name}"] = config
    return configs


def apply(url: str, configs: dict[str, dict[str, str]]) -> list[str]:
    """PUTs every config to the worker at ``url``; returns the names of the connectors it created."""
    created = []
    for name, config in configs.items():
        status, _body = request(url, "PUT", f"/connectors/{name}/config", config)
        if status == 201:
            created.append(name)
    return created


def connector_state(url: str, name: str, *, timeout: float = 30.0) -> str:
    """The connector's state once it and its tasks left UNASSIGNED (RUNNING, FAILED, PAUSED ...);
    FAILED when a task failed, with the first line of its trace in the error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _code, body = request(url, "GET", f"/connectors/{name}/status")
        except ConnectApiError as exc:
            # Right after a PUT the worker has no status for the connector yet.
            if (exc.detail or {}).get("status") != 404 or time.monotonic() >= deadline:
                raise
            body = {}
        states = [body.get("connector", {}).get("state")] + [task.get("state") for task in body.get("tasks", [])]
        failed = [task for task in body.get("tasks", []) if task.get("state") == "FAILED"]
        if failed:
            trace = str(failed[0].get("trace", "")).strip().splitlines()[:1]
            raise ConnectApiError(f"connector {name} failed: {' '.join(trace) or 'see the Connect log'}")
        if (body.get("tasks") and None not in states and "UNASSIGNED" not in states) or time.monotonic() >= deadline:
            return str(states[0] or "UNASSIGNED")
        time.sleep(0.5)


def request(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One REST call; raises :class:`ConnectApiError` with Connect's own message on a 4xx/5xx or no answer."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{url}{path}", data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message", exc.reason)
        except ValueError:
            message = exc.reason
        raise ConnectApiError(
            f"Kafka Connect refused {method} {path} ({exc.code}): {message}", detail={"status": exc.code}
        ) from exc
    except OSError as exc:
        raise ConnectApiError(
            f"Kafka Connect at {url} does not answer ({exc}): start it with `awe connect up`", detail={"url": url}
        ) from exc
