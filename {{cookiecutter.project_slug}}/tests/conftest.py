"""Fixtures: an app per test, its clients, and real servers (plugins below)."""

from __future__ import annotations

import importlib.util
{%- if cookiecutter.users %}
import os
{%- endif %}
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from {{ cookiecutter.package_name }} import create_app

from .asgi_websocket import AsgiWebsocket, asgi_connect
from .helpers import AppFactory, Connect, checks_up, wait_for
{%- if cookiecutter.users %}
from .users.tickets import TEST_SECRET_KEY
{%- endif %}

pytest_plugins = [
    "tests.servers",
{%- if cookiecutter.broadcast_backend == "redis" %}
    "tests.broadcast.redis.redis_server",
    "tests.broadcast.redis.redis_cluster",
{%- endif %}
]

{%- if cookiecutter.users %}
# Every app and server of the tests signs with this key (users/tickets.py).
os.environ.setdefault("QUART_SECRET_KEY", TEST_SECRET_KEY)
# One test client is one user that may send hundreds of messages a second: the
# per-user quota (users=true) is tested on its own (users/test_fail_closed.py).
for quota in ("USER_MESSAGES_PER_SECOND", "USER_MESSAGE_BURST", "USER_BYTES_PER_SECOND"):
    os.environ.setdefault(f"QUART_{quota}", str(10**9))
{%- endif %}

# The browser tests need the optional extra: pip install -e '.[test,browser]'.
if importlib.util.find_spec("playwright") is None:
    collect_ignore = ["browser"]


@pytest.fixture
async def make_app() -> AsyncIterator[AppFactory]:
    """Serve apps built with overrides: ``await make_app(MAX_MESSAGE_SIZE=10)``."""
    async with AsyncExitStack() as serving:

        async def factory(**overrides: Any) -> Quart:
            app = create_app(overrides)
            test_app = app.test_app()  # runs the before and after serving hooks
            await test_app.startup()
            serving.push_async_callback(test_app.shutdown)
            await wait_for(lambda: checks_up(app), within=10)
            return app

        yield factory


@pytest.fixture
async def app(make_app: AppFactory) -> Quart:
    return await make_app()


@pytest.fixture
def client(app: Quart) -> Client:
    """Quart's test client, for HTTP requests."""
    return app.test_client()


@pytest.fixture
def ws_connect(app: Quart) -> Connect:
    """Open an in-process websocket to ``app``: ``async with ws_connect("/ws") as ws``."""

    def open_websocket(
        url: str, headers: dict[str, str] | None = None
    ) -> AbstractAsyncContextManager[AsgiWebsocket]:
        return asgi_connect(app, url, headers)

    return open_websocket
