"""Small helpers that tests import (fixtures live in conftest.py and its plugins)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from quart import Quart

from .asgi_websocket import AsgiWebsocket

# The types of the make_app and ws_connect fixtures.
AppFactory = Callable[..., Awaitable[Quart]]
Connect = Callable[..., AbstractAsyncContextManager[AsgiWebsocket]]


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def checks_up(app: Quart) -> bool:
    """Every health check of ``app`` is up (a subscription to a message service, say)."""
    return all(check() == "up" for check in app.extensions["health_checks"].values())
