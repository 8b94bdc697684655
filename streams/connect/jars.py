"""The Kafka Connect worker's jars (connect-runtime, connect-json, Debezium's JDBC sink, the PostgreSQL
driver) resolved from Maven Central once, with the same cache scheme as the broker's jars
(:mod:`streams.launcher.maven`).

They land in ``$AWE_HOME/connect/<connect.version>/lib``; a marker holding a digest of ``pom.xml`` is
written only after Maven copied every jar, so an interrupted resolve is redone, and so is one made from an
older pom.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

from streams.connect.exceptions import ConnectError, ConnectMavenFailedError, ConnectMavenMissingError
from streams.launcher.maven import check_java
from streams.launcher.procs import file_lock
from streams.settings import awe_home

POM = Path(__file__).with_name("pom.xml")
MAVEN_TIMEOUT_S = 900.0
_MARKER = ".awe-complete"


@cache
def connect_version() -> str:
    """The Kafka Connect version the pom pins (its ``connect.version`` property)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(POM).getroot().find("m:properties/m:connect.version", ns)
    if node is None or not (node.text or "").strip():
        raise ConnectError(f"{POM} has no <connect.version> property: restore it from git")
    return (node.text or "").strip()


def lib_dir() -> Path:
    """Where the jars of this Connect version are cached (present or not)."""
    return awe_home() / "connect" / connect_version() / "lib"


def cached_jars() -> Path | None:
    """The cached lib directory when a complete resolve from the current pom is there, else None."""
    lib = lib_dir()
    try:
        if (lib / _MARKER).read_text(encoding="utf-8").strip() == _pom_digest():
            return lib
    except OSError:
        pass
    return None


def resolve_jars(*, force: bool = False) -> Path:
    """The directory holding the worker's jars; runs Maven only when they are not cached yet.

    Processes resolving at once serialize on a lock file, and the losers find the winner's jars.
    """
    if not force and (lib := cached_jars()) is not None:
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConnectMavenMissingError()
    # Maven runs on Java too, and our message is clearer than its own.
    check_java()
    lib = lib_dir()
    version_dir = lib.parent
    version_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(version_dir / ".lock"):
        if not force and (cached := cached_jars()) is not None:
            return cached
        _run_maven(mvn, version_dir, lib)
    return lib


def _run_maven(mvn: str, version_dir: Path, lib: Path) -> None:
    # Maven may write next to the pom (target/), and the package directory can be read-only.
    pom = version_dir / "pom.xml"
    shutil.copyfile(POM, pom)
    partial = Path(tempfile.mkdtemp(prefix="lib.partial-", dir=version_dir))
    try:
        cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={partial}"]
        try:
            proc = subprocess.run(
                cmd, cwd=version_dir, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ConnectMavenFailedError(-1, f"timed out after {MAVEN_TIMEOUT_S:.0f}s", POM) from exc
        output = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        if proc.returncode != 0:
            raise ConnectMavenFailedError(proc.returncode, output, POM)
        for needed in ("connect-runtime-*.jar", "debezium-connector-jdbc-*.jar", "postgresql-*.jar"):
            if not any(partial.glob(needed)):
                raise ConnectMavenFailedError(0, f"Maven succeeded but copied no {needed}\n{output}", POM)
        if lib.exists():
            shutil.rmtree(lib)
        partial.rename(lib)
        # Last step on purpose: the marker is the proof that the copy is complete.
        (lib / _MARKER).write_text(_pom_digest() + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(partial, ignore_errors=True)


@cache
def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()
