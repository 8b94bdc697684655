"""docker-compose.yml, checked as far as a machine without a Docker engine allows."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.harness import REPO

COMPOSE = REPO / "docker-compose.yml"
LONG_RUNNING = {"kafka", "worker-1", "worker-2", "gateway", "postgres", "connect", "prometheus", "grafana"}
#: Plain consumers that serve nothing to probe: their restart policy is their health.
CONSUMERS = {"sink-deriver"}


def _compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def test_the_whole_stack_is_there_with_health_checks_and_start_order() -> None:
    services = _compose()["services"]
    assert LONG_RUNNING | CONSUMERS | {"topics"} == set(services)
    for name in LONG_RUNNING:
        assert "healthcheck" in services[name], f"{name} has no health check"
    for name in CONSUMERS:
        assert services[name]["restart"] == "unless-stopped", name
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    assert services["worker-1"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_every_file_a_service_mounts_or_builds_from_exists() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        if "build" in service:
            context = REPO / str(service["build"])
            assert (context / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
    scrape = yaml.safe_load((REPO / "grafana/prometheus/prometheus.yml").read_text())
    targets = [t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    for target in targets:
        assert target.split(":")[0] in services, f"Prometheus scrapes {target}, which is not a service"


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker")
    version = subprocess.run([docker, "compose", "version"], capture_output=True) if docker else None
    if version is None or version.returncode != 0:
        pytest.skip("the docker client here has no compose plugin; the structural checks above still ran")
    done = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
