"""The definitions registry on ``awe.definitions``: versions, tenants, and a worker's live view."""

from __future__ import annotations

import time
from collections.abc import Callable

from schemas.definition import WorkflowDefinition
from schemas.validation import validate_definition
from streams.registry import DefinitionRegistry
from streams.settings import Settings


def _definition(text: str) -> WorkflowDefinition:
    return validate_definition({"name": "greet", "nodes": {"hello": {"kind": "transform", "output": text}}})


def test_a_new_version_only_when_the_content_changes(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    writer = DefinitionRegistry(settings)
    try:
        first, created = writer.register("acme", _definition("hi"))
        again, created_again = writer.register("acme", _definition("hi"))
        second, _ = writer.register("acme", _definition("hello"))
        other_tenant, _ = writer.register("globex", _definition("hi"))
    finally:
        writer.close()
    assert (first.version, created) == (1, True)
    assert (again.version, created_again) == (1, False)
    assert second.version == 2
    assert other_tenant.version == 1  # versions count per tenant

    reader = DefinitionRegistry(settings)
    try:
        newest = reader.resolve("acme", "greet")
        assert newest is not None and newest.version == 2
        pinned = reader.resolve("acme", "greet", 1)
        assert pinned is not None and pinned.digest == first.digest
        assert reader.resolve("acme", "greet", 3) is None
        assert [r.name for r in reader.list("globex")] == ["greet"]
        assert reader.list("initech") == []
    finally:
        reader.close()


def test_a_following_view_sees_a_registration_without_asking(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    follower = DefinitionRegistry(settings)
    writer = DefinitionRegistry(settings)
    follower.follow()
    try:
        writer.register("acme", _definition("hi"))
        deadline = time.monotonic() + 15
        while follower.get("acme", "greet") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        found = follower.get("acme", "greet")  # get never reads the topic itself: the thread did
        assert found is not None and found.version == 1
    finally:
        writer.close()
        follower.close()
