"""Clients that send and go at once, over real TCP: the server frees all they held.

A closed browser tab does this: its last message is still on the way when its
connection ends. While the handler publishes that message, the server's
disconnect cancels it; on Python 3.11 a cancel that meets a finishing
``asyncio.wait_for`` (redis-py 8 wraps commands in one) was lost, the handler
went back to a receive nothing would fill, and the socket was never freed.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
from websockets.frames import CloseCode

from ..helpers import connect
from ..servers import SERVERS, LiveServer, raw_websocket, read_metrics, run_server

ROUTES = ["/ws/broadcast", "/ws/rooms/lobby"]
CLIENTS = 12


def send_and_go(url: str, polite: bool) -> None:
    """One message, then a close frame (``polite``) or a bare TCP reset, at once."""
    with raw_websocket(url) as (sock, protocol):
        protocol.send_text(b"last words")
        if polite:
            protocol.send_close(CloseCode.GOING_AWAY)
        sock.sendall(b"".join(protocol.data_to_send()))
        if not polite:  # no close frame, no FIN: RST, as when a laptop's network goes
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def connections(server: LiveServer) -> float:
    return read_metrics(server)["websocket_connections"]


async def freed_within(server: LiveServer, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while connections(server) > 0:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("polite", [True, False], ids=["close-frame", "reset"])
async def test_clients_that_send_and_close_at_once_are_all_freed(server: str, polite: bool) -> None:
    # Hypercorn notices a reset connection when it next pings it: every second here.
    with run_server(server=server, env={"QUART_PING_INTERVAL": "1"}, metrics=True) as live:
        for route in ROUTES:
            for _ in range(CLIENTS):
                await asyncio.to_thread(send_and_go, live.ws_url + route, polite)
        assert await freed_within(live, 2.0), f"{connections(live)} sockets never freed"
        # And the server still serves: a new client is let in and answered.
        async with connect(live.ws_url + "/ws") as ws:
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), 10) == "still here"
