"""Java and Maven on this machine, and the Kafka broker's jars resolved from Maven Central once.

The jars land in ``$AWE_HOME/kafka/<version>/lib`` (``AWE_HOME`` defaults to ``~/.cache/awe``). A marker
file holding a digest of ``pom.xml`` is written into that directory only after Maven copied every jar, so
an interrupted resolve is redone, and so is a resolve made from an older pom.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from streams.launcher.exceptions import (
    JavaMissingError,
    JavaTooOldError,
    LauncherError,
    MavenFailedError,
    MavenMissingError,
)
from streams.launcher.procs import file_lock
from streams.settings import awe_home as awe_home  # re-exported: the launcher and the workers share one home

POM = Path(__file__).with_name("pom.xml")
LOG4J2_CONFIG = Path(__file__).with_name("log4j2.xml")
MIN_JAVA = 17
MAVEN_TIMEOUT_S = 900.0
_MARKER = ".awe-complete"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def kafka_version() -> str:
    """The Kafka version the pom pins (its ``kafka.version`` property)."""
    return KAFKA_JARS.version()


def find_java() -> str:
    """The ``java`` binary: ``$JAVA_HOME/bin/java`` when that exists, else the first on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise JavaMissingError()
    return found


@cache
def java_major(java: str) -> int:
    """The major version of a ``java`` binary (8 for ``1.8.0_x``, 17 for ``17.0.15``)."""
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LauncherError(f"could not run `{java} -version` ({exc}): check your Java installation") from exc
    match = _JAVA_VERSION.search(proc.stderr + proc.stdout)
    if match is None:
        raise LauncherError(f"could not read the version of {java}: check that `{java} -version` works")
    major = int(match.group(1))
    # Java 8 and older report themselves as 1.x.
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def check_java() -> str:
    """The ``java`` to run Kafka with; raises when it is missing or older than Java 17."""
    java = find_java()
    major = java_major(java)
    if major < MIN_JAVA:
        raise JavaTooOldError(java, major, MIN_JAVA)
    return java


ErrorFactory = Callable[[str], Exception]


@dataclass(frozen=True)
class MavenJars:
    """The jars a pom in the package resolves from Maven Central, once, into ``$AWE_HOME/<name>/<version>/lib``.

    ``required`` are globs that a complete copy matches; the ``on_*`` callables build the package's own errors.
    """

    pom: Path
    name: str
    version_property: str
    required: tuple[str, ...]
    on_bad_pom: ErrorFactory
    on_maven_missing: Callable[[], Exception]
    on_maven_failed: Callable[[int, str, Path], Exception]

    def version(self) -> str:
        """The version the pom pins (its ``<version_property>``)."""
        return _pom_property(self.pom, self.version_property, self.on_bad_pom)

    def lib_dir(self) -> Path:
        """Where the jars of this version are cached (present or not)."""
        return awe_home() / self.name / self.version() / "lib"

    def cached(self) -> Path | None:
        """The cached lib directory when a complete resolve from the current pom is there, else None."""
        lib = self.lib_dir()
        try:
            if (lib / _MARKER).read_text(encoding="utf-8").strip() == _digest(self.pom):
                return lib
        except OSError:
            pass
        return None

    def resolve(self, *, force: bool = False) -> Path:
        """The directory holding the jars; runs Maven only when they are not cached yet.

        Safe to call from several processes at once: they serialize on a lock file, and the losers find the
        winner's jars. ``force`` resolves again even when the cache is complete.
        """
        if not force and (lib := self.cached()) is not None:
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise self.on_maven_missing()
        # Maven runs on Java too, and our message is clearer than its own.
        check_java()
        lib = self.lib_dir()
        version_dir = lib.parent
        version_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(version_dir / ".lock"):
            if not force and (cached := self.cached()) is not None:
                return cached
            self._run_maven(mvn, version_dir, lib)
        return lib

    def _run_maven(self, mvn: str, version_dir: Path, lib: Path) -> None:
        # Maven may write next to the pom (target/), and the package directory can be read-only.
        pom = version_dir / "pom.xml"
        shutil.copyfile(self.pom, pom)
        partial = Path(tempfile.mkdtemp(prefix="lib.partial-", dir=version_dir))
        try:
            cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={partial}"]
            try:
                proc = subprocess.run(
                    cmd, cwd=version_dir, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise self.on_maven_failed(-1, f"timed out after {MAVEN_TIMEOUT_S:.0f}s", self.pom) from exc
            output = _ANSI.sub("", proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise self.on_maven_failed(proc.returncode, _tail(output), self.pom)
            for needed in self.required:
                if not any(partial.glob(needed)):
                    message = f"Maven succeeded but copied no {needed}\n{_tail(output)}"
                    raise self.on_maven_failed(0, message, self.pom)
            if lib.exists():
                shutil.rmtree(lib)
            partial.rename(lib)
            # Last step on purpose: the marker is the proof that the copy is complete.
            (lib / _MARKER).write_text(_digest(self.pom) + "\n", encoding="utf-8")
        finally:
            shutil.rmtree(partial, ignore_errors=True)


@cache
def _pom_property(pom: Path, name: str, on_bad_pom: ErrorFactory) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find(f"m:properties/m:{name}", ns)
    if node is None or not (node.text or "").strip():
        raise on_bad_pom(f"{pom} has no <{name}> property: restore it from git")
    return (node.text or "").strip()


@cache
def _digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


KAFKA_JARS = MavenJars(
    pom=POM,
    name="kafka",
    version_property="kafka.version",
    required=("kafka_2.13-*.jar",),
    on_bad_pom=LauncherError,
    on_maven_missing=MavenMissingError,
    on_maven_failed=MavenFailedError,
)


def lib_dir() -> Path:
    """Where the jars of this Kafka version are cached (present or not)."""
    return KAFKA_JARS.lib_dir()


def cached_jars() -> Path | None:
    """The broker's cached lib directory when it is complete, else None."""
    return KAFKA_JARS.cached()


def resolve_jars(*, force: bool = False) -> Path:
    """The directory holding the broker's jars; runs Maven only when they are not cached yet."""
    return KAFKA_JARS.resolve(force=force)
