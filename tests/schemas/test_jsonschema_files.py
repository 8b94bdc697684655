"""The committed JSON Schema files are exactly what the models generate."""

from __future__ import annotations

from awe.schemagen import OUT, render


def test_schema_files_match_the_models() -> None:
    expected = render()
    committed = {p.name: p.read_text() for p in OUT.glob("*.json")}
    assert sorted(committed) == sorted(expected), "run `python -m awe.schemagen`"
    drifted = [name for name, text in expected.items() if committed[name] != text]
    assert not drifted, f"schemas drifted from the models: {drifted}; run `python -m awe.schemagen`"


def test_every_event_type_has_a_schema() -> None:
    from schemas.events import EVENT_TYPES

    for name in EVENT_TYPES:
        assert f"event.{name}.json" in render()
