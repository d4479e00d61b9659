"""A client that floods with a backlog is closed with 1008, and only it, under real servers.

The in-process test client has no TCP backlog: what the flooder sent before it
read the close waits in the server, and only a real server shows what then
happens to the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode

from ..helpers import connect
from ..servers import SERVERS, LiveServer, raw_websocket, read_metrics, run_server

BACKLOG = 10_000  # messages sent at once, before reading anything
RATE, BURST = 50, 40
POLICY_VIOLATION = 1008


@pytest.fixture(params=SERVERS)
def limited_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    env = {"QUART_MESSAGES_PER_SECOND": str(RATE), "QUART_MESSAGE_BURST": str(BURST)}
    with run_server(server=request.param, env=env, metrics=True) as server:
        yield server


def flood_then_read(url: str) -> tuple[list[str], Close | None, float]:
    """Send ``BACKLOG`` messages at once, then read; return the texts, the close, its delay.

    The delay runs from the first byte sent to the end of the connection, the
    close answered as a well-behaved client answers it.
    """
    with raw_websocket(url) as (sock, protocol):
        for number in range(BACKLOG):
            protocol.send_text(f"flood {number}".encode())
        backlog = b"".join(protocol.data_to_send())
        started = time.monotonic()
        # From a thread: the server may stop reading, and our reading must go on.
        threading.Thread(target=send_quietly, args=(sock, backlog), daemon=True).start()
        texts, ended = read_to_the_end(sock, protocol)
        return texts, protocol.close_rcvd, ended - started


def send_quietly(sock: socket.socket, data: bytes) -> None:
    # Closed by the server before all of it went: what a flooder gets.
    with contextlib.suppress(OSError):
        sock.sendall(data)


def read_to_the_end(sock: socket.socket, protocol: ClientProtocol) -> tuple[list[str], float]:
    """Read until the server ends the TCP connection (or 10 s pass); answer its close."""
    sock.settimeout(10)
    texts: list[str] = []
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except (ConnectionResetError, TimeoutError):
            chunk = b""
        if not chunk:
            return texts, time.monotonic()
        protocol.receive_data(chunk)
        events = protocol.events_received()  # the handshake's response, then frames
        texts += [
            bytes(event.data).decode()
            for event in events
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT
        ]
        sock.sendall(b"".join(protocol.data_to_send()))  # pongs, and the close's answer


async def receive_until(ws: ClientConnection, last: str) -> list[str]:
    """The texts ``ws`` receives before ``last``."""
    received: list[str] = []
    while (text := str(await asyncio.wait_for(ws.recv(), 5))) != last:
        received.append(text)
    return received


async def test_a_flood_with_a_backlog_is_closed_at_once_and_others_are_untouched(
    limited_server: LiveServer,
) -> None:
    url = f"{limited_server.ws_url}/ws/broadcast"
    async with connect(url) as one, connect(url) as two:
        # What the bystanders and a first broadcast cost (a broker opens its
        # publishing connection) is counted in; the flooder must leave nothing more.
        await one.send("before the flood")
        for bystander in (one, two):
            assert await asyncio.wait_for(bystander.recv(), 5) == "before the flood"
        before = await asyncio.to_thread(read_metrics, limited_server)
        texts, close, delay = await asyncio.to_thread(flood_then_read, url)
        assert close is not None, "connection ended without a close frame"
        assert close.code == POLICY_VIOLATION
        assert delay < 1.0, f"the connection ended {delay:.1f} s after the flood began"
        await one.send("after the flood")
        for bystander in (one, two):
            received = await receive_until(bystander, "after the flood")
            # The burst, plus what the bucket refilled while the flood was read;
            # in order, and nothing of the thousands past the limit.
            assert BURST <= len(received) <= BURST + RATE * delay + 1
            assert received == [f"flood {number}" for number in range(len(received))]
        # Its own copies may still be on their way through a broker at the close.
        assert texts == received[: len(texts)]
        after = await asyncio.to_thread(read_metrics, limited_server)
    for name in ("process_open_fds", "websocket_connections"):
        assert after[name] == before[name], f"{name}: {before[name]} -> {after[name]}"
