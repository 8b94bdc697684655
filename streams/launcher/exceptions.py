"""Errors of the local Kafka launcher.

Each message is one line that says what to do; the CLI prints it and exits with code 2. Anything longer
(a log tail, Maven's output) goes in ``detail``.
"""

from __future__ import annotations

from pathlib import Path

from schemas.exceptions import AweError


class LauncherError(AweError):
    """Root of the launcher's errors."""

    code = "kafka_launcher"


class JavaMissingError(LauncherError):
    """No ``java`` on PATH (or under JAVA_HOME)."""

    code = "kafka_java_missing"

    def __init__(self) -> None:
        super().__init__(
            "Java not found on PATH: install Java 17+ (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )


class JavaTooOldError(LauncherError):
    """The ``java`` found is older than what Kafka 4.x needs."""

    code = "kafka_java_too_old"

    def __init__(self, java: str, major: int, required: int) -> None:
        super().__init__(
            f"{java} is Java {major}, Kafka 4.x needs Java {required}+: "
            "install Java 17+ (apt-get install openjdk-17-jre-headless) and put it first on PATH or in JAVA_HOME",
            detail={"java": java, "major": major, "required": required},
        )


class MavenMissingError(LauncherError):
    """No ``mvn`` on PATH while the Kafka jars are not cached yet."""

    code = "kafka_maven_missing"

    def __init__(self) -> None:
        super().__init__(
            "Maven not found on PATH and the Kafka jars are not cached yet: install Maven "
            "(apt-get install maven) or use Docker (docker compose up kafka)"
        )


class MavenFailedError(LauncherError):
    """``mvn dependency:copy-dependencies`` failed; ``detail['output']`` holds the end of its output."""

    code = "kafka_maven_failed"
    retryable = True

    def __init__(self, returncode: int, output: str, pom: Path) -> None:
        super().__init__(
            f"Maven could not resolve the Kafka jars (exit {returncode}); check network access to Maven Central "
            f"and run `mvn -B -f {pom} dependency:copy-dependencies` to see why",
            detail={"returncode": returncode, "output": output, "pom": str(pom)},
        )


class PortInUseError(LauncherError):
    """A broker or controller port is already taken by another process."""

    code = "kafka_port_in_use"

    def __init__(self, port: int, base_port: int) -> None:
        what = f"port {port}" if port == base_port else f"port {port} (needed by a cluster on --port {base_port})"
        super().__init__(
            f"{what} is already in use: stop what listens there or choose another with --port",
            detail={"port": port, "base_port": base_port},
        )
        self.port = port


class InvalidOptionsError(LauncherError):
    """The requested options contradict each other or the data directory."""

    code = "kafka_invalid_options"


class AlreadyRunningError(LauncherError):
    """A cluster started by awe already runs on the port, with other options."""

    code = "kafka_already_running"

    def __init__(self, port: int, bootstrap: str) -> None:
        super().__init__(
            f"a Kafka cluster started by awe already runs on port {port} ({bootstrap}) with other options: "
            f"stop it with `awe kafka down --port {port}` or choose another --port",
            detail={"port": port, "bootstrap": bootstrap},
        )


class BrokerStartError(LauncherError):
    """A broker exited, or did not serve metadata in time. ``log_tail`` holds the last lines of its log."""

    code = "kafka_broker_start"
    retryable = True

    def __init__(self, message: str, *, log_file: Path, log_tail: list[str]) -> None:
        super().__init__(message, detail={"log_file": str(log_file), "log_tail": log_tail})
        self.log_file = log_file
        self.log_tail = log_tail
