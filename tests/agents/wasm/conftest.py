"""Fixtures of the WASM host tests: the examples built from source, and a host with a private cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.wasm.host import WasmHost
from streams.settings import Settings
from tests.agents.wasm.plugins import build_examples


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The example plugins, compiled from their C and WAT sources for this session."""
    return build_examples(tmp_path_factory.mktemp("plugins"))


@pytest.fixture
def host(tmp_path: Path) -> Iterator[WasmHost]:
    """A host that allows ``log``, runs 4 instances at once, caches compilations under ``tmp_path`` and runs
    small calls inline with the default budget, as a worker does."""
    host = WasmHost(
        allowed=frozenset({"log"}),
        max_instances=4,
        cache_dir=tmp_path / "cache",
        inline_fuel=Settings().wasm_inline_fuel,
    )
    yield host
    host.close()
