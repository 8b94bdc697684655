"""Apache Kafka on this machine without Docker: jars from Maven Central, KRaft nodes run by Java.

``up`` starts a cluster and returns once it serves metadata, ``down`` stops it, ``status`` lists what
runs; see docs/kafka.md.
"""

from streams.launcher.cluster import Cluster, down, status, up
from streams.launcher.config import CONTROLLER_PORT_OFFSET
from streams.launcher.exceptions import (
    AlreadyRunningError,
    BrokerStartError,
    InvalidOptionsError,
    JavaMissingError,
    JavaTooOldError,
    LauncherError,
    MavenFailedError,
    MavenMissingError,
    PortInUseError,
)
from streams.launcher.maven import awe_home, kafka_version, resolve_jars

__all__ = [
    "CONTROLLER_PORT_OFFSET",
    "AlreadyRunningError",
    "BrokerStartError",
    "Cluster",
    "InvalidOptionsError",
    "JavaMissingError",
    "JavaTooOldError",
    "LauncherError",
    "MavenFailedError",
    "MavenMissingError",
    "PortInUseError",
    "awe_home",
    "down",
    "kafka_version",
    "resolve_jars",
    "status",
    "up",
]
