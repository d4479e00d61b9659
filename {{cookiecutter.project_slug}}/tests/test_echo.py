"""The echo websocket: exact echo, size limit, Origin check."""

from __future__ import annotations

import pytest
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError
from quart.typing import TestClientProtocol as Client

from .conftest import AppFactory


@pytest.mark.parametrize("message", ["hello", "", "héllo ✓ 🚀", "<b>html</b>"])
async def test_text_comes_back_as_the_same_text(client: Client, message: str) -> None:
    async with client.websocket("/ws") as ws:
        await ws.send(message)
        assert await ws.receive() == message


async def test_bytes_come_back_as_the_same_bytes(client: Client) -> None:
    async with client.websocket("/ws") as ws:
        await ws.send(b"\x00\x01\xffbinary")
        reply = await ws.receive()
        assert isinstance(reply, bytes)
        assert reply == b"\x00\x01\xffbinary"


async def test_many_messages_keep_their_order(client: Client) -> None:
    async with client.websocket("/ws") as ws:
        for number in range(50):
            await ws.send(str(number))
        assert [await ws.receive() for _ in range(50)] == [str(n) for n in range(50)]


async def test_message_over_the_limit_closes_with_1009(make_app: AppFactory) -> None:
    client = (await make_app(MAX_MESSAGE_SIZE=10)).test_client()
    async with client.websocket("/ws") as ws:
        await ws.send("0123456789")  # exactly at the limit: fine
        assert await ws.receive() == "0123456789"
        await ws.send("é" * 6)  # 6 characters but 12 bytes of UTF-8
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
        assert closed.value.args[0] == 1009


async def test_a_closed_client_leaves_others_served(make_app: AppFactory) -> None:
    client = (await make_app(MAX_MESSAGE_SIZE=10)).test_client()
    async with client.websocket("/ws") as good, client.websocket("/ws") as bad:
        await bad.send(b"x" * 11)
        with pytest.raises(WebsocketDisconnectError):
            await bad.receive()
        await good.send("still here")
        assert await good.receive() == "still here"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://localhost"}, {"Origin": "https://localhost/"}],
    ids=["no-origin", "same-host", "same-host-https"],
)
async def test_allowed_origins_connect(client: Client, headers: dict[str, str]) -> None:
    async with client.websocket("/ws", headers=headers) as ws:
        await ws.send("hi")
        assert await ws.receive() == "hi"


async def test_foreign_origin_is_refused_with_403(client: Client) -> None:
    async with client.websocket("/ws", headers={"Origin": "https://evil.example"}) as ws:
        with pytest.raises(WebsocketResponseError) as refused:
            await ws.receive()
        assert refused.value.response.status_code == 403


async def test_configured_origin_is_allowed(make_app: AppFactory) -> None:
    app = await make_app(ALLOWED_ORIGINS="https://app.example, https://other.example")
    client = app.test_client()
    async with client.websocket("/ws", headers={"Origin": "https://app.example"}) as ws:
        await ws.send("hi")
        assert await ws.receive() == "hi"


async def test_bad_config_fails_at_start_up(make_app: AppFactory) -> None:
    with pytest.raises(ValueError, match="QUART_MAX_MESSAGE_SIZE"):
        await make_app(MAX_MESSAGE_SIZE=0)
