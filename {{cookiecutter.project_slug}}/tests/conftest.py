"""Fixtures: an app per test, its test client, and a real server process."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from {{ cookiecutter.package_name }} import create_app

from .live_server import SERVERS, LiveServer, run_server
{%- if cookiecutter.broadcast_backend == "redis" %}
from .redis_server import shared_redis  # noqa: F401 (autouse: starts redis-server)
{%- endif %}

AppFactory = Callable[..., Awaitable[Quart]]

# The browser tests need the optional extra: pip install -e '.[test,browser]'.
if importlib.util.find_spec("playwright") is None:
    collect_ignore_glob = ["test_browser*.py"]


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def healthy(app: Quart) -> bool:
    """Every health check is up (a subscription to a message service, say)."""
    return all(check() == "up" for check in app.extensions["health_checks"].values())


@pytest.fixture
async def make_app() -> AsyncIterator[AppFactory]:
    """Serve apps built with overrides: ``await make_app(MAX_MESSAGE_SIZE=10)``."""
    async with AsyncExitStack() as serving:

        async def factory(**overrides: Any) -> Quart:
            app = create_app(overrides)
            test_app = app.test_app()  # runs the before and after serving hooks
            await test_app.startup()
            serving.push_async_callback(test_app.shutdown)
            await wait_for(lambda: healthy(app), within=10)
            return app

        yield factory


@pytest.fixture
async def app(make_app: AppFactory) -> Quart:
    return await make_app()


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


@pytest.fixture(params=SERVERS)
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """The app served as in production, by each server it has, on a free local port."""
    with run_server(server=request.param) as server:
        yield server
