"""The one send path: ``OpenSocket`` sends until closed, then says so."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypercorn.typing import ASGISendEvent
from quart import websocket

from {{ cookiecutter.package_name }}.sockets import OpenSocket, SocketClosed, current_socket

from .asgi_websocket import Closed, asgi_connect
from .helpers import AppFactory, RecordingSocket, wait_for


async def test_it_sends_text_and_bytes_until_closed_then_raises() -> None:
    sock = RecordingSocket()
    await sock.send_data("text")
    await sock.send_data(b"bytes")
    await sock.close(1000, "done")
    with pytest.raises(SocketClosed):
        await sock.send_data("late")
    with pytest.raises(SocketClosed):  # Quart's own send path, too
        await sock.send_event({"type": "websocket.send", "bytes": None, "text": "late"})
    await sock.send_event(
        {"type": "websocket.close", "code": 1000, "reason": ""}
    )  # Quart's close, after ours
    assert sock.events == [
        {"type": "websocket.send", "bytes": None, "text": "text"},
        {"type": "websocket.send", "bytes": b"bytes", "text": None},
        {"type": "websocket.close", "code": 1000, "reason": "done"},
    ]
    assert sock not in sock.open_sockets


async def test_it_is_open_from_accept_to_close() -> None:
    events: list[ASGISendEvent] = []

    async def server_send(event: ASGISendEvent) -> None:
        events.append(event)

    open_sockets: set[OpenSocket] = set()
    sock = OpenSocket(server_send, open_sockets)
    await sock.send_event({"type": "websocket.accept", "subprotocol": None, "headers": []})
    assert open_sockets == {sock}
    await sock.send_event({"type": "websocket.close", "code": 1000, "reason": ""})
    assert open_sockets == set()
    assert sock.closed
    assert [event["type"] for event in events] == ["websocket.accept", "websocket.close"]


async def test_end_closes_at_once_and_sends_the_close_without_waiting() -> None:
    sock, release = RecordingSocket(), asyncio.Event()

    async def slow_server_send(event: ASGISendEvent) -> None:
        await release.wait()
        sock.events.append(event)

    sock.server_send = slow_server_send
    sock.end(1013, "too slow")
    assert sock.closed  # before the close frame is even written
    with pytest.raises(SocketClosed):
        await sock.send_data("late")
    sock.end(1013, "again")  # once is enough
    release.set()
    await wait_for(lambda: sock.close_codes() == [1013])
    assert sock.closing is not None and sock.closing.done()


async def test_a_close_the_server_cannot_send_changes_nothing() -> None:
    sock = RecordingSocket()

    async def gone(event: ASGISendEvent) -> None:
        raise OSError("connection reset")

    sock.server_send = gone
    await sock.close(1001, "going away")  # no error
    assert sock.closed


async def test_a_handler_that_sends_after_its_socket_closed_ends_quietly(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = await make_app()
    ended = asyncio.Event()

    @app.websocket("/ws/closes-then-sends")
    async def closes_then_sends() -> None:
        await websocket.accept()
        await current_socket().close(4000, "closed from elsewhere")
        try:
            await websocket.send("late")
        finally:
            ended.set()

    with caplog.at_level(logging.ERROR):
        async with asgi_connect(app, "/ws/closes-then-sends") as ws:
            with pytest.raises(Closed) as closed:
                await ws.receive()
            assert closed.value.code == 4000
            await asyncio.wait_for(ended.wait(), 5)
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
