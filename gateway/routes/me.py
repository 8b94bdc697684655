"""``GET /v1/me``: who the credentials name, so a client (the web page) can show its tenant and role."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import authorize


async def me(request: Request) -> JSONResponse:
    """The caller's tenant, role and name, and whether the gateway is open (no credentials configured)."""
    gateway, principal = authorize(request)
    return JSONResponse(
        {"tenant": principal.tenant, "role": principal.role.value, "name": principal.name, "open": gateway.auth.open}
    )


ROUTES = [Route("/v1/me", me, methods=["GET"])]
