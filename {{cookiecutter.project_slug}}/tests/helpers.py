"""Small helpers that tests import (fixtures live in conftest.py and its plugins)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from hypercorn.typing import ASGISendEvent
from quart import Quart
from websockets.asyncio import client

from {{ cookiecutter.package_name }}.sockets import OpenSocket

from .asgi_websocket import AsgiWebsocket
{%- if cookiecutter.users %}
from .users.tickets import ticket_header
{%- endif %}

# The types of the make_app and ws_connect fixtures.
AppFactory = Callable[..., Awaitable[Quart]]
Connect = Callable[..., AbstractAsyncContextManager[AsgiWebsocket]]


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def connect(url: str, **options: Any) -> client.connect:
    """websockets' ``connect``{% if cookiecutter.users %}, as a new user with a ticket unless headers are given{% endif %}."""
{%- if cookiecutter.users %}
    options.setdefault("additional_headers", ticket_header())
{%- endif %}
    return client.connect(url, **options)


METRICS_TOKEN = "metrics-token"  # make_app(METRICS_TOKEN=METRICS_TOKEN) turns /metrics on


async def scrape(app: Quart, token: str | None = METRICS_TOKEN) -> tuple[int, str]:
    """The status and the text of ``GET /metrics``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await app.test_client().get("/metrics", headers=headers)
    return response.status_code, await response.get_data(as_text=True)


def sample(text: str, name: str) -> float:
    """The value of one sample line, ``name`` with its labels, in Prometheus text.

    A metric with labels has no line for a label until it is first set: 0.
    Anything else missing (a metric renamed or gone) fails the test.
    """
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    family = name.split("{", 1)[0]
    families = {f"# TYPE {family} ", f"# TYPE {family.removesuffix('_total')} counter"}
    if "{" in name and any(declared in text for declared in families):
        return 0.0
    raise AssertionError(f"no sample {name} in the metrics")


async def metric(app: Quart, name: str) -> float:
    """The value of one sample of ``app``'s metrics (each app has its own)."""
    return sample((await scrape(app))[1], name)


def checks_up(app: Quart) -> bool:
    """Every health check of ``app`` is up (a subscription to a message service, say)."""
    return all(check() == "up" for check in app.extensions["health_checks"].values())


class RecordingSocket(OpenSocket):
    """An accepted ``OpenSocket`` whose server records what it is sent, for unit tests."""

    def __init__(self) -> None:
        self.events: list[ASGISendEvent] = []
        super().__init__(self.record, set())
        self.open_sockets.add(self)

    async def record(self, event: ASGISendEvent) -> None:
        self.events.append(event)

    def close_codes(self) -> list[int]:
        return [event["code"] for event in self.events if event["type"] == "websocket.close"]
