"""A client that stops reading is cut off; the others get every message."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Iterator

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.frames import Close
from websockets.typing import Data

from ..helpers import connect
from ..servers import SERVERS, LiveServer, raw_websocket, run_server
from .broadcasting import next_frame

MESSAGE = "x" * 64 * 1024
COUNT = 200  # 12.5 MiB: more than the kernel buffers a stalled reader can absorb


@pytest.fixture(params=SERVERS)
def small_queue_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    # The sender goes as fast as its own copies come back: no flood limit here.
    env = {"QUART_BROADCAST_QUEUE_SIZE": "10", "QUART_MESSAGES_PER_SECOND": "100000"}
    with run_server(env=env, server=request.param) as server:
        yield server


def read_until_close(sock: socket.socket, protocol: ClientProtocol) -> Close | None:
    """Read everything the server sent; return its close frame, if any."""
    sock.settimeout(20)
    while protocol.close_rcvd is None:
        try:
            chunk = sock.recv(1 << 20)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        protocol.receive_data(chunk)
        protocol.events_received()
    return protocol.close_rcvd


async def next_number(ws: ClientConnection, room: bool) -> str:
    """The number the next message starts with: a broadcast's text, or a room frame's data."""

    def receive() -> Awaitable[Data]:
        return asyncio.wait_for(ws.recv(), 20)

    text = (await next_frame(receive))["data"] if room else str(await receive())
    return str(text).partition(":")[0]


async def receive_all(ws: ClientConnection, room: bool) -> list[str]:
    return [await next_number(ws, room) for _ in range(COUNT)]


@pytest.mark.parametrize("path", ["/ws/broadcast", "/ws/rooms/slow"])
async def test_stalled_client_is_cut_off_and_others_get_everything(
    small_queue_server: LiveServer, path: str
) -> None:
    url = small_queue_server.ws_url + path
    room = path.startswith("/ws/rooms/")
    expected = [str(number) for number in range(COUNT)]
    with raw_websocket(url) as (sock, protocol):  # and never read
        async with connect(url, max_size=None) as sender, connect(url, max_size=None) as other:
            other_received = asyncio.create_task(receive_all(other, room))
            for number in expected:
                # Wait for our own copy: a burst would overflow healthy clients too.
                await sender.send(f"{number}:{MESSAGE}")
                assert await next_number(sender, room) == number
            assert await asyncio.wait_for(other_received, 20) == expected
        close = await asyncio.to_thread(read_until_close, sock, protocol)
    # Once the stalled socket drains, the close frame queued behind the
    # backlog arrives: the server cut this client off, it did not drop it.
    assert close is not None, "connection dropped without a close frame"
    assert close.code == 1013
