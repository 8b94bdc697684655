"""Kafka Connect for awe: a local worker from Maven Central jars (``up``/``down``/``status``), the
derivation of sink-ready topics from ``awe.events``, and the connector configurations ``awe connect apply``
sends to the worker's REST API; see docs/connect.md.
"""

from streams.connect.exceptions import (
    BrokerUnreachableError,
    ConnectApiError,
    ConnectError,
    ConnectMavenFailedError,
    ConnectMavenMissingError,
    ConnectPortInUseError,
    ConnectStartError,
)
from streams.connect.jars import connect_version, resolve_jars
from streams.connect.rest import Database, apply, connector_configs, connector_state
from streams.connect.worker import Worker, down, status, up

__all__ = [
    "BrokerUnreachableError",
    "ConnectApiError",
    "ConnectError",
    "ConnectMavenFailedError",
    "ConnectMavenMissingError",
    "ConnectPortInUseError",
    "ConnectStartError",
    "Database",
    "Worker",
    "apply",
    "connect_version",
    "connector_configs",
    "connector_state",
    "down",
    "resolve_jars",
    "status",
    "up",
]
