"""The plugin registry on ``awe.plugins``: names, versions and hashes, as workers resolve them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from agents.wasm.manifest import to_wasm
from schemas.plugins import PluginManifest, PluginRef
from streams.exceptions import PluginConflictError
from streams.plugins import PluginRegistry
from streams.settings import Settings
from tests.agents.wasm.plugins import ECHO

ONE = to_wasm(ECHO.encode())
TWO = to_wasm(ECHO.replace("(i32.const 1024)", "(i32.const 4096)").encode())


def test_names_versions_and_hashes_resolve_on_another_reader(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    writer = PluginRegistry(settings)
    writer.add(ONE, PluginManifest(), "echo")
    writer.add(TWO, PluginManifest(), "echo")
    writer.add(ONE, PluginManifest(), "alias", "1.0.0")  # the same module under a second name
    writer.close()

    reader = PluginRegistry(settings)
    try:
        newest = reader.resolve(PluginRef.parse("echo"))
        assert newest is not None and newest.module == TWO
        first = reader.resolve(PluginRef.parse("echo@1"))
        assert first is not None and first.module == ONE
        by_hash = reader.resolve(PluginRef.parse(f"sha256:{hashlib.sha256(ONE).hexdigest()}"))
        assert by_hash is not None and {str(t) for t in by_hash.tags} == {"echo@1", "alias@1.0.0"}
        assert reader.resolve(PluginRef.parse("echo@3")) is None
    finally:
        reader.close()


def test_a_version_never_changes(settings_factory: Callable[..., Settings]) -> None:
    registry = PluginRegistry(settings_factory())
    try:
        registry.add(ONE, PluginManifest(), "fixed", "1")
        _, _, created = registry.add(ONE, PluginManifest(), "fixed", "1")
        assert not created
        with pytest.raises(PluginConflictError, match="fixed@1 already names"):
            registry.add(TWO, PluginManifest(), "fixed", "1")
    finally:
        registry.close()


def test_a_bad_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="use name, name@version or sha256"):
        PluginRef.parse("Not A Name")
