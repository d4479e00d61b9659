"""The echo websocket: exact echo, size limit, Origin check."""

from __future__ import annotations

import pytest
from quart import Quart

from .asgi_websocket import Closed, Refused, asgi_connect
from .helpers import AppFactory, Connect


@pytest.mark.parametrize("message", ["hello", "", "héllo ✓ 🚀", "<b>html</b>", b"", b"\x00\xff"])
async def test_a_message_comes_back_unchanged(ws_connect: Connect, message: str | bytes) -> None:
    async with ws_connect("/ws") as ws:
        await ws.send(message)
        reply = await ws.receive()
        assert reply == message
        assert type(reply) is type(message)


async def test_many_messages_keep_their_order(ws_connect: Connect) -> None:
    async with ws_connect("/ws") as ws:
        for number in range(50):
            await ws.send(str(number))
        assert [await ws.receive() for _ in range(50)] == [str(n) for n in range(50)]


async def test_message_over_the_limit_closes_with_1009(make_app: AppFactory) -> None:
    app = await make_app(MAX_MESSAGE_SIZE=10)
    async with asgi_connect(app, "/ws") as ws:
        await ws.send("0123456789")  # exactly at the limit: fine
        assert await ws.receive() == "0123456789"
        await ws.send("é" * 6)  # 6 characters but 12 bytes of UTF-8
        with pytest.raises(Closed) as closed:
            await ws.receive()
        assert closed.value.code == 1009


async def test_a_closed_client_leaves_others_served(make_app: AppFactory) -> None:
    app = await make_app(MAX_MESSAGE_SIZE=10)
    async with asgi_connect(app, "/ws") as good, asgi_connect(app, "/ws") as bad:
        await bad.send(b"x" * 11)
        with pytest.raises(Closed):
            await bad.receive()
        await good.send("still here")
        assert await good.receive() == "still here"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://localhost"}, {"Origin": "https://localhost/"}],
    ids=["no-origin", "same-host", "same-host-https"],
)
async def test_allowed_origins_connect(ws_connect: Connect, headers: dict[str, str]) -> None:
    async with ws_connect("/ws", headers=headers) as ws:
        await ws.send("hi")
        assert await ws.receive() == "hi"


async def test_foreign_origin_is_refused_with_403(ws_connect: Connect) -> None:
    async with ws_connect("/ws", headers={"Origin": "https://evil.example"}) as ws:
        with pytest.raises(Refused) as refused:
            await ws.receive()
        assert refused.value.status == 403


async def test_configured_origin_is_allowed(make_app: AppFactory) -> None:
    app: Quart = await make_app(ALLOWED_ORIGINS="https://app.example, https://other.example")
    async with asgi_connect(app, "/ws", headers={"Origin": "https://app.example"}) as ws:
        await ws.send("hi")
        assert await ws.receive() == "hi"


async def test_bad_config_fails_at_start_up(make_app: AppFactory) -> None:
    with pytest.raises(ValueError, match="QUART_MAX_MESSAGE_SIZE"):
        await make_app(MAX_MESSAGE_SIZE=0)
