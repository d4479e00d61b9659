"""Prometheus metrics, and ``GET /metrics`` behind a bearer token.

Each app has its own ``Metrics``: a prometheus-client registry with the app's
metrics and the process's (open file descriptors, resident memory, CPU), so
that two apps in one process (tests, say) never report each other's numbers.
Code that serves a request or websocket finds them with ``current_metrics()``.
Each server process is its own target: under several workers, scrape each (or
run one worker per container) rather than summing inside the app.
"""

from __future__ import annotations

import asyncio

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from quart import Blueprint, abort, current_app, g, websocket
from quart.typing import ResponseReturnValue

from .tokens import refuse_without_token


class Metrics:
    """One app's metrics, in a registry of its own; a feature (the hub) adds its own to it."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        # The process's figures, the same for every app of the process.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        self.connections = Gauge(
            "websocket_connections", "Websocket connections, handshakes too.", registry=registry
        )
        self.open_websockets = Gauge(
            "websockets_open", "Open websockets, by route.", ["route"], registry=registry
        )
        self.messages_received = Counter(
            "websocket_messages_received",
            "Messages received from clients, by route.",
            ["route"],
            registry=registry,
        )
        self.messages_sent = Counter(
            "websocket_messages_sent",
            "Messages sent to clients, by route.",
            ["route"],
            registry=registry,
        )
        self.closed = Counter(
            "websockets_closed_by_server",
            "Websockets the server closed, by reason: slow (1013), flood (1008), too_big (1009).",
            ["reason"],
            registry=registry,
        )
        self.handshakes_refused = Counter(
            "websocket_handshakes_refused",
            "Handshakes refused before accept, by reason (origin, cap, ...).",
            ["reason"],
            registry=registry,
        )
        tasks = Gauge("asyncio_tasks", "Tasks of the serving event loop.", registry=registry)
        tasks.set_function(lambda: len(asyncio.all_tasks()))


def current_metrics() -> Metrics:
    """The metrics of the app serving the current request or websocket."""
    metrics: Metrics = current_app.extensions["metrics"]
    return metrics


blueprint = Blueprint("metrics", __name__)


def route_label() -> str:
    """The route of the current websocket as declared, its parameters unfilled."""
    rule = websocket.url_rule
    return rule.rule if rule is not None else "unrouted"


async def count_open() -> None:
    """A ``before_websocket`` hook: one more open websocket on this route."""
    g.metrics_route = route_label()
    current_metrics().open_websockets.labels(g.metrics_route).inc()


async def count_closed(error: BaseException | None) -> None:
    """A ``teardown_websocket`` hook: the websocket has ended, however it ended."""
    route = g.get("metrics_route")
    if route is not None:
        current_metrics().open_websockets.labels(route).dec()


@blueprint.get("/metrics")
async def serve_metrics() -> ResponseReturnValue:
    """The metrics in Prometheus text format; 404 unless QUART_METRICS_TOKEN is set."""
    expected = current_app.config["METRICS_TOKEN"]
    if not expected:
        abort(404)  # off: nothing here to find
    refusal = refuse_without_token(str(expected))
    if refusal is not None:
        return refusal
    body = generate_latest(current_metrics().registry)
    return body, 200, {"Content-Type": CONTENT_TYPE_LATEST}
