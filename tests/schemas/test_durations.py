"""Durations: every accepted spelling, every rejected one, and round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.durations import DURATION_PATTERN, Duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1m 30s", 90.0),
        ("0s", 0.0),
        (".5s", 0.5),
        ("  3s  ", 3.0),
        ("10", 10.0),
        ("2.5", 2.5),
        (0, 0.0),
        (5, 5.0),
        (0.2, 0.2),
    ],
)
def test_accepted_spellings(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["1d", "1w", "", "s", "ms", "1.2.3s", "one second", "5 sec", "1s2", "inf", "nan", "1S", "-1s", "-1"],
)
def test_rejected_strings_name_the_accepted_formats(value: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration") as caught:
        parse_duration(value)
    assert "ms, s, m or h" in str(caught.value) or "negative" in str(caught.value)


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), True, False, None, [1]])
def test_rejected_values(value: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**9))
def test_milliseconds_round_trip(n: int) -> None:
    assert parse_duration(f"{n}ms") == pytest.approx(n / 1000)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "m", "h"]))
def test_whole_units_round_trip(n: int, unit: str) -> None:
    factor = {"s": 1, "m": 60, "h": 3600}[unit]
    assert parse_duration(f"{n}{unit}") == n * factor


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_float_seconds_round_trip(x: float) -> None:
    assert parse_duration(f"{x}s") == x
    assert parse_duration(str(x)) == x
    assert parse_duration(x) == x


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False), st.sampled_from(["ms", "s"]))
def test_json_schema_pattern_agrees_with_the_parser(x: float, unit: str) -> None:
    assert re.match(DURATION_PATTERN, f"{x}{unit}")


def test_pattern_rejects_what_the_parser_rejects() -> None:
    for bad in ["1d", "5 sec", "-1s"]:
        assert not re.match(DURATION_PATTERN, bad)


class _Timed(BaseModel):
    timeout: Duration | None = None


def test_duration_field_validates_and_reports() -> None:
    assert _Timed(timeout="250ms").timeout == 0.25  # type: ignore[arg-type]
    assert _Timed(timeout=None).timeout is None
    with pytest.raises(ValidationError, match="invalid duration '1d'"):
        _Timed(timeout="1d")  # type: ignore[arg-type]


def test_duration_json_schema_accepts_string_or_number() -> None:
    schema = TypeAdapter(Duration).json_schema()
    types = {branch["type"] for branch in schema["anyOf"]}
    assert types == {"string", "number"}
    assert TypeAdapter(Duration).json_schema(mode="serialization") == {"type": "number", "minimum": 0}
