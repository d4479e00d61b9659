"""Prometheus metrics, and ``GET /metrics`` behind a bearer token.

The metrics are prometheus-client's, in its default registry, which also
reports the process (open file descriptors, resident memory, CPU). Each server
process is its own target: under several workers, scrape each (or run one
worker per container) rather than summing inside the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from quart import Blueprint, abort, current_app, g, websocket
from quart.typing import ResponseReturnValue

from .tokens import refuse_without_token


class Tally:
    """One label's count: a plain number, added to only by the event loop's thread."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class MessageCounter(Collector):
    """A counter by route for the per-message paths, read when ``/metrics`` is scraped.

    prometheus-client's ``Counter`` takes a lock on every ``inc``, for threads
    this app does not have: counting every message sent to every socket, that
    lock was a measurable share of the cost of sending. A custom collector is
    prometheus-client's documented way to export numbers kept elsewhere.
    """

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation = name, documentation
        self.tallies: dict[str, Tally] = {}
        REGISTRY.register(self)

    def labels(self, route: str) -> Tally:
        return self.tallies.setdefault(route, Tally())

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=["route"])
        for route, tally in self.tallies.items():
            family.add_metric([route], tally.value)
        yield family


CONNECTIONS = Gauge("websocket_connections", "Websocket connections, handshakes included.")
OPEN_WEBSOCKETS = Gauge("websockets_open", "Open websockets, by route.", ["route"])
MESSAGES_RECEIVED = MessageCounter(
    "websocket_messages_received", "Messages received from clients, by route."
)
MESSAGES_SENT = MessageCounter("websocket_messages_sent", "Messages sent to clients, by route.")
CLOSED = Counter(
    "websockets_closed_by_server",
    "Websockets the server closed, by reason: slow (1013), flood (1008), too_big (1009).",
    ["reason"],
)
HANDSHAKES_REFUSED = Counter(
    "websocket_handshakes_refused",
    "Handshakes refused before accept, by reason: origin, cap, bad_room, bad_since.",
    ["reason"],
)
ASYNCIO_TASKS = Gauge("asyncio_tasks", "Tasks of the serving event loop.")
ASYNCIO_TASKS.set_function(lambda: len(asyncio.all_tasks()))

blueprint = Blueprint("metrics", __name__)


def route_label() -> str:
    """The route of the current websocket, as declared (``/ws/rooms/<room>``)."""
    rule = websocket.url_rule
    return rule.rule if rule is not None else "unrouted"


async def count_open() -> None:
    """A ``before_websocket`` hook: one more open websocket on this route."""
    g.metrics_route = route_label()
    OPEN_WEBSOCKETS.labels(g.metrics_route).inc()


async def count_closed(error: BaseException | None) -> None:
    """A ``teardown_websocket`` hook: the websocket has ended, however it ended."""
    route = g.get("metrics_route")
    if route is not None:
        OPEN_WEBSOCKETS.labels(route).dec()


@blueprint.get("/metrics")
async def serve_metrics() -> ResponseReturnValue:
    """The metrics in Prometheus text format; 404 unless QUART_METRICS_TOKEN is set."""
    expected = current_app.config["METRICS_TOKEN"]
    if not expected:
        abort(404)  # off: nothing here to find
    refusal = refuse_without_token(str(expected))
    if refusal is not None:
        return refusal
    return generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST}
