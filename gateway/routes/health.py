"""``/healthz`` (the process answers) and ``/readyz`` (the broker answers and the shared consumer is
assigned and caught up): neither needs credentials."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import gateway_of


async def healthz(_request: Request) -> JSONResponse:
    """Alive."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: 200, else 503 with what is missing."""
    gateway = gateway_of(request)
    broker = await gateway.blocking(gateway.producer.broker_answers)
    consumer = gateway.fanout.ready.is_set() and gateway.fanout.failed is None
    ready = broker and consumer
    return JSONResponse(
        {"ready": ready, "broker": broker, "consumer": consumer, "open": gateway.auth.open},
        status_code=200 if ready else 503,
    )


ROUTES = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
