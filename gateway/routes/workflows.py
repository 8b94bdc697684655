"""``/v1/workflows``: apply (YAML or JSON), list, get a version. Definitions are namespaced by tenant."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from gateway.auth import Role
from gateway.bodies import read_body
from gateway.exceptions import InvalidRequestError, NotFoundError, UnsupportedMediaTypeError
from gateway.responses import JSONResponse
from gateway.state import authorize
from schemas.exceptions import DefinitionError
from schemas.validation import load_definition_text, validate_definition
from streams.registry import RegisteredDefinition

_YAML = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
_JSON = {"application/json", ""}


def _summary(record: RegisteredDefinition) -> dict[str, Any]:
    return {
        "name": record.name,
        "version": record.version,
        "digest": record.digest,
        "registered_at": record.registered_at.isoformat(),
        "nodes": len(record.definition.nodes),
    }


def _full(record: RegisteredDefinition) -> dict[str, Any]:
    return {**_summary(record), "definition": record.definition.model_dump(mode="json", exclude_none=True)}


async def apply(request: Request) -> JSONResponse:
    """Register a new version when the content changed: 201 registered, 200 unchanged, 422 invalid."""
    gateway, principal = authorize(request, Role.OPERATOR)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _YAML | _JSON:
        raise UnsupportedMediaTypeError(f"send the definition as application/yaml or application/json, not {media}")
    raw = await read_body(request, gateway.settings.gateway_max_body_bytes)
    try:
        text = raw.decode()
    except UnicodeDecodeError as e:
        raise InvalidRequestError("the definition is not UTF-8 text", code="invalid_definition") from e
    try:
        definition = validate_definition(load_definition_text(text))
    except DefinitionError as e:
        raise InvalidRequestError(e.message, code=e.code, detail=e.detail) from e
    async with gateway.register_lock:  # versions are numbered in order; one registration at a time here
        record, created = await gateway.blocking(gateway.registry.register, principal.tenant, definition)
    return JSONResponse({**_summary(record), "created": created}, status_code=201 if created else 200)


async def list_workflows(request: Request) -> JSONResponse:
    """The newest version of every workflow of the caller's tenant."""
    gateway, principal = authorize(request)
    records = await gateway.blocking(gateway.registry.list, principal.tenant)
    return JSONResponse({"workflows": [_summary(r) for r in records]})


async def get_workflow(request: Request) -> JSONResponse:
    """The newest version of a workflow, or the one named by ``/versions/{version}``."""
    gateway, principal = authorize(request)
    name = request.path_params["name"]
    version = request.path_params.get("version")
    record = await gateway.blocking(gateway.registry.resolve, principal.tenant, name, version)
    if record is None:
        shown = name + (f" version {version}" if version is not None else "")
        raise NotFoundError(f"no workflow {shown}", code="unknown_workflow")
    return JSONResponse(_full(record))


ROUTES = [
    Route("/v1/workflows", apply, methods=["POST"]),
    Route("/v1/workflows", list_workflows, methods=["GET"]),
    Route("/v1/workflows/{name}", get_workflow, methods=["GET"]),
    Route("/v1/workflows/{name}/versions/{version:int}", get_workflow, methods=["GET"]),
]
