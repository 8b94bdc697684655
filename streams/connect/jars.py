"""The Kafka Connect worker's jars (connect-runtime, connect-json, Debezium's JDBC sink, the PostgreSQL
driver) resolved from Maven Central once, with the same cache scheme as the broker's jars
(:mod:`streams.launcher.maven`).

They land in ``$AWE_HOME/connect/<connect.version>/lib``; a marker holding a digest of ``pom.xml`` is
written only after Maven copied every jar, so an interrupted resolve is redone, and so is one made from an
older pom.
"""

from __future__ import annotations

from pathlib import Path

from streams.connect.exceptions import ConnectError, ConnectMavenFailedError, ConnectMavenMissingError
from streams.launcher.maven import MavenJars

CONNECT_JARS = MavenJars(
    pom=Path(__file__).with_name("pom.xml"),
    name="connect",
    version_property="connect.version",
    required=("connect-runtime-*.jar", "debezium-connector-jdbc-*.jar", "postgresql-*.jar"),
    on_bad_pom=ConnectError,
    on_maven_missing=ConnectMavenMissingError,
    on_maven_failed=ConnectMavenFailedError,
)


def connect_version() -> str:
    """The Kafka Connect version the pom pins (its ``connect.version`` property)."""
    return CONNECT_JARS.version()


def cached_jars() -> Path | None:
    """The cached lib directory when a complete resolve from the current pom is there, else None."""
    return CONNECT_JARS.cached()


def resolve_jars(*, force: bool = False) -> Path:
    """The directory holding the worker's jars; runs Maven only when they are not cached yet."""
    return CONNECT_JARS.resolve(force=force)
