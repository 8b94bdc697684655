"""``/metrics`` in Prometheus' text format (no credentials): requests by route and status with latency,
WebSocket connections, messages sent, closes by reason, and the process's own figures."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.state import Gateway, gateway_of


class GatewayCollector(Collector):
    """Reads the figures from the live Gateway at scrape time (nothing is counted twice)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        gw = self.gateway
        yield GaugeMetricFamily("awe_gateway_ws_connections", "open WebSocket connections", len(gw.hub.connections))
        yield CounterMetricFamily("awe_gateway_ws_delivered", "messages queued to WebSocket clients", gw.hub.delivered)
        closes = CounterMetricFamily("awe_gateway_ws_closes", "connections closed by the gateway", labels=["reason"])
        for reason, count in sorted(gw.closes.items()):
            closes.add_metric([reason], count)
        yield closes
        yield GaugeMetricFamily(
            "awe_gateway_ready", "1 when the shared consumer has caught up", gw.fanout.ready.is_set()
        )


REQUESTS = Counter(
    "awe_gateway_requests_total", "HTTP requests, by route template, method and status", ["route", "method", "status"]
)
REQUEST_DURATION = Histogram(
    "awe_gateway_request_duration_seconds",
    "HTTP request latency, by route template",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


# ``labels()`` validates and locks on every call; the set of route templates, methods and statuses is small
# and fixed, so each series is looked up once.
_SERIES: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one HTTP request of a route *template* and record its latency."""
    key = (route, method, status)
    series = _SERIES.get(key)
    if series is None:
        series = _SERIES[key] = (REQUESTS.labels(route, method, str(status)), REQUEST_DURATION.labels(route))
    series[0].inc()
    series[1].observe(seconds)


class RequestMetrics:
    """ASGI middleware counting every HTTP request by its route *template* (``/v1/runs/{run_id}``), never by
    the path itself, so a run id never becomes a label."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            observe_request(route, scope["method"], status, time.perf_counter() - started)


async def metrics(request: Request) -> Response:
    """The scrape: the process's registry (requests, process figures) and the live gateway's figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway_of(request)))
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, media_type="text/plain; version=0.0.4")


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
