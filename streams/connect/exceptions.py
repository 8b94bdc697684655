"""Errors of the local Kafka Connect worker and of the sink derivation.

Each message is one line that says what to do; the CLI prints it and exits with code 2. Anything longer
(a log tail, Maven's output, the REST answer) goes in ``detail``.
"""

from __future__ import annotations

from pathlib import Path

from streams.launcher.exceptions import LauncherError


class ConnectError(LauncherError):
    """Root of the Connect errors; a :class:`LauncherError` so Java errors share one handler."""

    code = "connect"


class ConnectMavenMissingError(ConnectError):
    """No ``mvn`` on PATH while the Connect jars are not cached yet."""

    code = "connect_maven_missing"

    def __init__(self) -> None:
        super().__init__(
            "Maven not found on PATH and the Kafka Connect jars are not cached yet: install Maven "
            "(apt-get install maven) or use Docker (docker compose up connect)"
        )


class ConnectMavenFailedError(ConnectError):
    """``mvn dependency:copy-dependencies`` failed; ``detail['output']`` holds the end of its output."""

    code = "connect_maven_failed"
    retryable = True

    def __init__(self, returncode: int, output: str, pom: Path) -> None:
        super().__init__(
            f"Maven could not resolve the Kafka Connect jars (exit {returncode}); check network access to Maven "
            f"Central and run `mvn -B -f {pom} dependency:copy-dependencies` to see why",
            detail={"returncode": returncode, "output": output, "pom": str(pom)},
        )


class BrokerUnreachableError(ConnectError):
    """The Kafka bootstrap servers did not answer a metadata request."""

    code = "connect_broker_unreachable"
    retryable = True

    def __init__(self, bootstrap: str) -> None:
        super().__init__(
            f"Kafka at {bootstrap} does not answer: start it (awe kafka up) or set AWE_KAFKA_BOOTSTRAP",
            detail={"bootstrap": bootstrap},
        )


class ConnectPortInUseError(ConnectError):
    """The REST port is taken by a process awe did not start."""

    code = "connect_port_in_use"

    def __init__(self, port: int) -> None:
        super().__init__(
            f"port {port} is already in use: stop what listens there or choose another with --port",
            detail={"port": port},
        )


class ConnectStartError(ConnectError):
    """The worker exited, or its REST API did not answer in time. ``log_tail`` holds its last log lines."""

    code = "connect_start"
    retryable = True

    def __init__(self, message: str, *, log_file: Path, log_tail: list[str]) -> None:
        super().__init__(message, detail={"log_file": str(log_file), "log_tail": log_tail})
        self.log_file = log_file
        self.log_tail = log_tail


class ConnectApiError(ConnectError):
    """The Connect REST API refused a request or could not be reached."""

    code = "connect_api"
