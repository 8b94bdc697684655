"""Durations as workflow authors write them: ``250ms``, ``1.5s``, ``2m``, ``1h``, ``1h30m`` or plain seconds.

Everything inside awe works in float seconds; this module is the one place that turns the human spelling
into that number. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

__all__ = ["DURATION_PATTERN", "Duration", "parse_duration"]

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
# One or more "<number><unit>" parts ("1h30m"), or a bare number of seconds ("1.5").
_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h)")
_BARE = re.compile(rf"{_NUMBER}")
_COMPOUND = re.compile(rf"(?:{_NUMBER}\s*(?:ms|s|m|h)\s*)+")

#: The JSON Schema pattern a duration string must match (kept in step with the parser above).
DURATION_PATTERN = rf"^\s*(?:{_NUMBER}|(?:{_NUMBER}\s*(?:ms|s|m|h)\s*)+)\s*$"

_FORMATS = "a number of seconds, or a number followed by ms, s, m or h (e.g. 250ms, 1.5s, 2m, 1h, 1h30m)"


def parse_duration(value: str | float) -> float:
    """Return ``value`` as a non-negative number of seconds.

    Accepts a non-negative int or float (seconds), a numeric string (``"1.5"``), or a string of one or
    more ``<number><unit>`` parts with units ``ms``, ``s``, ``m``, ``h`` (``"250ms"``, ``"1h30m"``).
    Raises :class:`ValueError` naming the accepted formats for anything else, including booleans,
    negative numbers, NaN and infinity.
    """
    # bool is an int subclass; `timeout: true` is a mistake, not one second.
    # ValueError even for wrong types: pydantic reports only ValueError from a validator as a field error.
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use {_FORMATS}")
    if isinstance(value, int | float):
        return _check_seconds(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: use {_FORMATS}")
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    if _BARE.fullmatch(text):
        return _check_seconds(float(text), value)
    if _COMPOUND.fullmatch(text):
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))
        return _check_seconds(seconds, value)
    raise ValueError(f"invalid duration {value!r}: use {_FORMATS}")


def _check_seconds(seconds: float, original: object) -> float:
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {original!r}: must be a finite number of seconds, not negative")
    return seconds


#: A duration field: validated from any spelling :func:`parse_duration` accepts, stored as float seconds.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(ge=0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "description": f"A duration: {_FORMATS}.",
        },
        mode="validation",
    ),
    # Dumped as seconds, so the serialized form is always a plain number.
    WithJsonSchema({"type": "number", "minimum": 0}, mode="serialization"),
]
