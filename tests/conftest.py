"""Shared fixtures: one real Apache Kafka broker per test session, and workers on unique topics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.admin import ensure_topics
from streams.settings import Settings
from tests.harness import AiServers, Engine, FlakyServer, WorkerProcess, session_broker, unique_settings
from tests.loopback import AnthropicServer, BedrockServer, OpenAIServer


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The bootstrap address of the session's broker (never skipped: no broker is a failure)."""
    with session_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def settings_factory(kafka_bootstrap: str) -> object:
    """Make settings with unique topics and group ids, topics already created."""

    def make(**overrides: object) -> Settings:
        settings = unique_settings(kafka_bootstrap, **overrides)
        ensure_topics(settings)
        return settings

    return make


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[object]:
    """Start ``awe worker`` processes for given settings; all are stopped when the test ends."""
    started: list[WorkerProcess] = []

    def start(settings: Settings, *, wait: bool = True) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path)
        started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


#: The orchestrator's runtimes (``AWE_ORCHESTRATOR``); a module marked ``both_runtimes`` runs under each.
RUNTIMES = ("faust", "loop")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of a module marked ``both_runtimes`` once per orchestrator runtime."""
    if "orchestrator" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_runtimes"):
        metafunc.parametrize("orchestrator", RUNTIMES, indirect=True, scope="module")


@pytest.fixture(scope="module")
def orchestrator(request: pytest.FixtureRequest) -> str:
    """The orchestrator runtime of this module's workers: the configured one unless parametrized."""
    runtime: str = getattr(request, "param", Settings().orchestrator)
    return runtime


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, orchestrator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Unique topics and one running worker, shared by the tests of a module."""
    settings = unique_settings(kafka_bootstrap, orchestrator=orchestrator)
    ensure_topics(settings)
    eng = Engine(settings, tmp_path_factory.mktemp("workers"))
    eng.start_worker()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def http_server() -> Iterator[FlakyServer]:
    """A loopback HTTP server with scripted failures."""
    server = FlakyServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def ai_servers() -> Iterator[AiServers]:
    """Loopback servers speaking OpenAI's, Anthropic's and Bedrock's wire protocols."""
    servers = AiServers()
    yield servers
    servers.close()


@pytest.fixture(scope="module")
def ai_engine(
    kafka_bootstrap: str, ai_servers: AiServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """Unique topics and one worker whose AI providers point at the loopback servers."""
    settings = unique_settings(kafka_bootstrap)
    ensure_topics(settings)
    eng = Engine(settings, tmp_path_factory.mktemp("ai-workers"), env=ai_servers.env())
    eng.start_worker()
    yield eng
    eng.close()


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A fresh loopback OpenAI server of the test's own."""
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    """A fresh loopback Anthropic server of the test's own."""
    with AnthropicServer() as server:
        yield server


@pytest.fixture
def bedrock_server() -> Iterator[BedrockServer]:
    """A fresh loopback Bedrock server of the test's own."""
    with BedrockServer() as server:
        yield server
