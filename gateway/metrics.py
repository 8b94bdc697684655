"""``/metrics`` in Prometheus' text format (no credentials): connections, fan-out, closes, runs known."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


async def metrics(request: Request) -> Response:
    """The scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway_of(request)))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
