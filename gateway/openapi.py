"""The OpenAPI 3.1 document of the REST API (``/openapi.json``) and a self-contained page that renders it
(``/docs``, no script from elsewhere). Both need no credentials."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway.bodies import CancelBody, ForkBody, StartRunBody
from gateway.responses import JSONResponse

_ERROR = {"$ref": "#/components/schemas/Error"}
_OBJECT: dict[str, Any] = {"type": "object"}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        401: "missing or bad credentials",
        403: "the role may not",
        404: "not found (another tenant's run too)",
        409: "conflicts with what is recorded (a reused Idempotency-Key, a signal the run no longer takes)",
        413: "body too large",
        415: "unsupported content type",
        422: "invalid JSON, schema or inputs, with field paths",
        429: "rate limited (Retry-After)",
        501: "not available in this gateway process",
        503: "not ready",
    }
    codes = (401, 429, *statuses)
    return {str(s): {"description": text[s], "content": {"application/json": {"schema": _ERROR}}} for s in codes}


def _ok(status: int, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {"application/json": {"schema": schema or _OBJECT}}}}


def _param(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


_RUN_ID = _param("run_id", "path", {"type": "string", "minLength": 1, "maxLength": 200}, "the run id")
_RUN_VIEW = {"$ref": "#/components/schemas/Run"}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    json_body = {"application/json": {"schema": _OBJECT}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "awe gateway",
            "version": "1",
            "description": "REST for awe: workflows, runs, signals and cancels. The WebSocket protocol of "
            "/v1/stream is described in docs/gateway.md.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "API key or JWT"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message", "detail"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "detail": {}},
                        }
                    },
                },
                "StartRun": StartRunBody.model_json_schema(),
                "Cancel": CancelBody.model_json_schema(),
                "Fork": ForkBody.model_json_schema(),
                "Run": {
                    "type": "object",
                    "description": "the run object of `awe run --json`",
                    "required": ["run_id", "status", "outputs", "nodes"],
                    "properties": {
                        "run_id": {"type": "string"},
                        "status": {"type": "string"},
                        "outputs": {},
                        "nodes": {"type": "object"},
                        "error": {},
                        "seq": {"type": "integer", "description": "the seq of the last event folded into it"},
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "alive", "security": [], "responses": _ok(200, "alive")}},
            "/readyz": {
                "get": {
                    "summary": "ready: the broker answers and the consumer has caught up",
                    "security": [],
                    "responses": {**_ok(200, "ready"), **_ok(503, "not ready")},
                }
            },
            "/v1/me": {
                "get": {
                    "summary": "the caller: tenant, role, name, and whether the gateway is open",
                    "responses": {**_ok(200, "the caller"), **_errors()},
                }
            },
            "/v1/workflows": {
                "post": {
                    "summary": "register a definition (YAML or JSON); a new version only when it changed",
                    "requestBody": {
                        "required": True,
                        "content": {"application/yaml": {"schema": {"type": "string"}}, **json_body},
                    },
                    "responses": {**_ok(201, "registered"), **_ok(200, "unchanged"), **_errors(403, 413, 415, 422)},
                },
                "get": {
                    "summary": "the newest version of each workflow",
                    "responses": {**_ok(200, "list"), **_errors()},
                },
            },
            "/v1/workflows/{name}": {
                "get": {
                    "summary": "the newest version of a workflow",
                    "parameters": [_param("name", "path", {"type": "string"}, "workflow name")],
                    "responses": {**_ok(200, "the definition"), **_errors(404)},
                }
            },
            "/v1/workflows/{name}/versions/{version}": {
                "get": {
                    "summary": "one version of a workflow",
                    "parameters": [
                        _param("name", "path", {"type": "string"}, "workflow name"),
                        _param("version", "path", {"type": "integer", "minimum": 0}, "version"),
                    ],
                    "responses": {**_ok(200, "the definition"), **_errors(404)},
                }
            },
            "/v1/runs": {
                "post": {
                    "summary": "start a run: 202 once the broker has the StartRun",
                    "parameters": [
                        _param(
                            "Idempotency-Key",
                            "header",
                            {"type": "string", "maxLength": 200},
                            "retries with the same key and body start one run; another body is a 409",
                        ),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StartRun"}}},
                    },
                    "responses": {
                        **_ok(
                            202,
                            "accepted",
                            {"type": "object", "required": ["run_id"], "properties": {"run_id": {"type": "string"}}},
                        ),
                        **_errors(403, 409, 413, 422),
                    },
                },
                "get": {
                    "summary": "the tenant's runs, newest first",
                    "parameters": [
                        _param(
                            "status",
                            "query",
                            {
                                "type": "string",
                                "enum": ["running", "waiting", "succeeded", "failed", "cancelled", "rejected"],
                            },
                            "only runs in this status",
                        ),
                        _param("workflow", "query", {"type": "string"}, "only runs of this workflow"),
                        _param("parent", "query", {"type": "string"}, "only forks of this run"),
                        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most"),
                        _param("before", "query", {"type": "string"}, "runs started before this run (paging)"),
                    ],
                    "responses": {**_ok(200, "runs"), **_errors(422, 503)},
                },
            },
            "/v1/runs/{run_id}": {
                "get": {
                    "summary": "the run object of `awe run --json`",
                    "parameters": [_RUN_ID],
                    "responses": {**_ok(200, "the run", _RUN_VIEW), **_errors(404)},
                }
            },
            "/v1/runs/{run_id}/events": {
                "get": {
                    "summary": "the run's events after a seq, as stored on awe.events",
                    "parameters": [
                        _RUN_ID,
                        _param("after_seq", "query", {"type": "integer", "minimum": 0}, "events with a larger seq"),
                        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10000}, "at most"),
                    ],
                    "responses": {**_ok(200, "events"), **_errors(404, 422)},
                }
            },
            "/v1/runs/{run_id}/state": {
                "get": {
                    "summary": "the run as it stood after a seq, at an offset or at a time",
                    "parameters": [
                        _RUN_ID,
                        _param("at_seq", "query", {"type": "integer", "minimum": 0}, "after this event"),
                        _param("at_offset", "query", {"type": "integer", "minimum": 0}, "up to this offset"),
                        _param("at_time", "query", {"type": "string"}, "ISO 8601 or epoch seconds"),
                    ],
                    "responses": {**_ok(200, "the run then", _RUN_VIEW), **_errors(404, 422)},
                }
            },
            "/v1/runs/{run_id}/signals/{node}": {
                "post": {
                    "summary": 'signal a node (an approval takes {"approve": true})',
                    "parameters": [_RUN_ID, _param("node", "path", {"type": "string"}, "node id")],
                    "requestBody": {"required": False, "content": {"application/json": {"schema": {}}}},
                    "responses": {**_ok(202, "sent"), **_errors(403, 404, 409, 413, 422)},
                }
            },
            "/v1/runs/{run_id}/cancel": {
                "post": {
                    "summary": "cancel a run",
                    "parameters": [_RUN_ID],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Cancel"}}},
                    },
                    "responses": {**_ok(202, "sent"), **_errors(403, 404, 409, 413, 422)},
                }
            },
            "/v1/runs/{run_id}/fork": {
                "post": {
                    "summary": "start a run that reuses this one's results for every node not downstream of from_node",
                    "parameters": [_RUN_ID],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Fork"}}},
                    },
                    "responses": {**_ok(202, "the new run id"), **_errors(403, 404, 413, 422)},
                }
            },
            "/v1/runs/{run_id}/replay": {
                "post": {
                    "summary": "run the engine again over the recorded events, with no side effects, and compare",
                    "parameters": [_RUN_ID],
                    "responses": {**_ok(200, "the report of `awe replay --json`"), **_errors(404, 501)},
                }
            },
        },
    }


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>awe gateway API</title>
<style>body{font:15px system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}
code{background:#f3f3f3;padding:0 .3em}h2{margin-top:1.5em}.m{display:inline-block;width:4.5em;font-weight:bold}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:13px}</style></head>
<body><h1>awe gateway API</h1>
<p>Send <code>Authorization: Bearer &lt;API key or JWT&gt;</code>. The machine-readable document is
<a href="/openapi.json">/openapi.json</a>; the WebSocket protocol of <code>/v1/stream</code> is in docs/gateway.md.
Every error answers <code>{"error": {"code", "message", "detail"}}</code> with a stable <code>code</code>.</p>
<div id="paths">loading…</div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const out = document.getElementById('paths'); out.textContent = '';
  for (const [path, ops] of Object.entries(doc.paths)) {
    const h = document.createElement('h2'); h.textContent = path; out.appendChild(h);
    for (const [method, op] of Object.entries(ops)) {
      const p = document.createElement('p');
      const m = document.createElement('span'); m.className = 'm'; m.textContent = method.toUpperCase();
      p.appendChild(m); p.appendChild(document.createTextNode(op.summary || ''));
      out.appendChild(p);
      const pre = document.createElement('pre');
      const responses = Object.fromEntries(
        Object.entries(op.responses).map(([status, r]) => [status, r.description || '']));
      pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody, responses}, null, 1);
      out.appendChild(pre);
    }
  }
});
</script></body></html>
"""


async def openapi_json(_request: Request) -> JSONResponse:
    """The OpenAPI document."""
    return JSONResponse(document())


async def docs_page(_request: Request) -> HTMLResponse:
    """A readable rendering of the document."""
    return HTMLResponse(_PAGE)


ROUTES = [Route("/openapi.json", openapi_json, methods=["GET"]), Route("/docs", docs_page, methods=["GET"])]
