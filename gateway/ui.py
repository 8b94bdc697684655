"""The web page: a run list, a run's nodes and events live over ``/v1/stream``, approvals and cancels.

Three static files from ``gateway/ui/``, read once at import. The page talks to the gateway only through
the public REST and WebSocket API, with the caller's own key, so it can do nothing the key could not.
Its script renders every value as text, never as HTML, and the policy below allows no other origin and no
inline script, so a run's output can not run in the browser.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_FILES = Path(__file__).resolve().parent / "ui"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page(name: str) -> Route:
    body = (_FILES / name).read_bytes()
    media_type = _TYPES[Path(name).suffix]

    async def serve(_request: Request) -> Response:
        return Response(body, media_type=media_type, headers=_HEADERS)

    return Route("/" if name == "index.html" else f"/ui/{name}", serve, methods=["GET"])


ROUTES = [_page("index.html"), _page("app.js"), _page("app.css")]
