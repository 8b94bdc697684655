"""Request bodies: read within the size limit, parsed as JSON, checked against a model with field paths."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from gateway.exceptions import InvalidRequestError, PayloadTooLargeError

M = TypeVar("M", bound=BaseModel)


class StartRunBody(BaseModel):
    """``POST /v1/runs``."""

    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1)
    inputs: dict[str, Any] = Field(default_factory=dict)


class ForkBody(BaseModel):
    """``POST /v1/runs/{id}/fork``: run again from a node, with definition changes and input overrides."""

    model_config = ConfigDict(extra="forbid")

    from_node: str = Field(min_length=1, max_length=200)
    #: Dotted paths into the definition, such as ``nodes.summary.model``, and their new values.
    set: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)


class CancelBody(BaseModel):
    """``POST /v1/runs/{id}/cancel`` (the body is optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or PayloadTooLargeError as soon as it passes ``limit`` bytes (never buffered beyond it)."""
    return await receive_body(request.receive, request.headers.get("content-length"), limit)


async def receive_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The whole body from the ASGI ``receive``, given its declared ``Content-Length``: PayloadTooLargeError
    as soon as it passes ``limit`` bytes, ClientDisconnect when the client leaves before the end."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body of {declared} bytes is over the limit of {limit}", detail={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body is over the limit of {limit} bytes", detail={"limit": limit})
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """JSON, or a 422 ``invalid_json`` that says where it broke."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequestError(f"body is not JSON: {e}", code="invalid_json", detail={"problems": []}) from e


def parse_model(raw: bytes, model: type[M]) -> M:
    """A JSON body as ``model``; a 422 listing every problem with its field path otherwise."""
    value = parse_json(raw)
    try:
        return model.model_validate(value)
    except ValidationError as e:
        problems = [
            {"path": ".".join(str(part) for part in error["loc"]) or "", "message": error["msg"]}
            for error in e.errors(include_url=False)
        ]
        raise InvalidRequestError("body does not fit the schema", detail={"problems": problems}) from e
