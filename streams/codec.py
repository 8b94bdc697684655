"""(De)serialization of records, on pydantic's Rust core; the one place the wire encoding is chosen."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def encode(model: BaseModel) -> bytes:
    """A model as the UTF-8 JSON value of a record."""
    return model.__pydantic_serializer__.to_json(model)


def decode(data: bytes, model: type[M]) -> M:
    """A record value as a model; raises pydantic.ValidationError when it does not fit."""
    return model.model_validate_json(data)


def dumps(value: Any) -> bytes:
    """Plain JSON for values that are not models (DLQ records, keys)."""
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    """Parse plain JSON; raises orjson.JSONDecodeError (a ValueError) on bad input."""
    return orjson.loads(data)
