"""The redis backend, against a real redis-server and real app processes."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from quart import Quart
from websockets.asyncio.client import ClientConnection

from {{ cookiecutter.package_name }}.broadcast.broker_redis import decode, encode

from ...asgi_websocket import asgi_connect
from ...helpers import AppFactory, connect, wait_for
from ...servers import LiveServer, answers_healthz
from ..broadcasting import subscriber_count
from .redis_server import TOKEN, RedisServer


@pytest.fixture
async def two_apps(make_app: AppFactory, redis_server: RedisServer) -> tuple[Quart, Quart]:
    """Two apps in one process, each with its own subscription: two "workers"."""
    first = await make_app(REDIS_URL=redis_server.url, BROADCAST_TOKEN=TOKEN)
    second = await make_app(REDIS_URL=redis_server.url, BROADCAST_TOKEN=TOKEN)
    return first, second


def test_text_and_bytes_survive_encoding() -> None:
    for message in ("héllo", "", b"\x00\xff", b"", "t", b"b"):
        assert decode(encode(message)) == message
        assert type(decode(encode(message))) is type(message)


async def test_post_to_one_app_reaches_clients_of_both(two_apps: tuple[Quart, Quart]) -> None:
    first, second = two_apps
    async with (
        asgi_connect(first, "/ws/broadcast") as on_first,
        asgi_connect(second, "/ws/broadcast") as on_second,
    ):
        await wait_for(lambda: subscriber_count(first) == subscriber_count(second) == 1)
        response = await first.test_client().post(
            "/api/broadcast", data="hello both", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 204
        assert await on_first.receive() == "hello both"
        assert await on_second.receive() == "hello both"
        await on_second.send(b"\x00bytes")
        assert await on_first.receive() == b"\x00bytes"


def get(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def expect(clients: list[ClientConnection], message: str) -> None:
    for ws in clients:
        assert await asyncio.wait_for(ws.recv(), 10) == message


async def post(server: LiveServer, body: str) -> int:
    status, _ = await asyncio.to_thread(
        get, f"{server.http_url}/api/broadcast", TOKEN, body.encode()
    )
    return status


async def test_two_processes_share_broadcasts_and_survive_a_redis_restart(
    redis_server: RedisServer, two_servers: tuple[LiveServer, LiveServer]
) -> None:
    first, second = two_servers
    async with (
        connect(f"{first.ws_url}/ws/broadcast") as a,
        connect(f"{second.ws_url}/ws/broadcast") as b,
    ):
        clients = [a, b]
        assert await post(first, "posted to the first") == 204
        await expect(clients, "posted to the first")
        await b.send("sent on the second")
        await expect(clients, "sent on the second")

        redis_server.stop()
        await wait_for(lambda: not answers_healthz(first), within=15)
        status, body = get(f"{first.http_url}/healthz")
        assert status == 503
        assert json.loads(body)["checks"]["redis"] == "down"
        assert await post(first, "lost") == 503

        redis_server.start()  # same port, empty: nothing survives but the app
        await wait_for(lambda: answers_healthz(first) and answers_healthz(second), within=15)
        assert await post(second, "after the restart") == 204
        await expect(clients, "after the restart")  # on the same sockets
        await a.send("from a, after")
        await expect(clients, "from a, after")
