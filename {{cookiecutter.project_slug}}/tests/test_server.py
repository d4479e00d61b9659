"""The app under its production server(s), driven by an independent client."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .servers import SERVERS, UVLOOP, LiveServer, raw_websocket, run_server

# The close code each server sends its websockets on SIGTERM: this app's
# shutdown middleware sends 1001 (going away); uvicorn itself sends 1012
# (service restart) first. Both tell a client to reconnect.
GOING_AWAY = {"hypercorn": 1001, "uvicorn": 1012}
# Hypercorn exits 0; uvicorn re-raises the SIGTERM it handled, so it ends as a
# process with no handler would. Both are a clean stop to a service manager.
EXIT_ON_SIGTERM = {"hypercorn": 0, "uvicorn": -signal.SIGTERM}


async def test_exact_echo_over_a_real_socket(live_server: LiveServer) -> None:
    async with connect(f"{live_server.ws_url}/ws") as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        for empty in ("", b""):
            await ws.send(empty)
            assert await ws.recv() == empty


async def test_oversized_message_closes_only_that_client(live_server: LiveServer) -> None:
    async with (
        connect(f"{live_server.ws_url}/ws") as good,
        connect(f"{live_server.ws_url}/ws", max_size=None) as bad,
    ):
        await bad.send(b"x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(bad.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
        await good.send("still served")
        assert await good.recv() == "still served"


def send_invalid_utf8_frame(url: str) -> bytes:
    """Open a websocket by hand, send a text frame that is not UTF-8, read the answer."""
    with raw_websocket(url) as (sock, _):
        # FIN + text opcode, masked, 2 bytes, a zero mask, then 0xFF 0xFE: not UTF-8.
        sock.sendall(b"\x81\x82\x00\x00\x00\x00\xff\xfe")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


async def test_invalid_frame_ends_only_that_connection(live_server: LiveServer) -> None:
    async with connect(f"{live_server.ws_url}/ws") as other:
        answer = await asyncio.to_thread(send_invalid_utf8_frame, f"{live_server.ws_url}/ws")
        # Hypercorn pings (an empty ping frame) as soon as it accepts.
        while answer.startswith(b"\x89\x00"):
            answer = answer[2:]
        # RFC 6455 wants a 1007 close frame (uvicorn sends one); Hypercorn 0.18
        # drops the TCP connection instead. Either way it ends, and only it.
        assert answer == b"" or answer.startswith(b"\x88")  # nothing, or a close frame
        await other.send("still served")
        assert await other.recv() == "still served"


def flood_without_reading(url: str, total: int) -> int:
    """Send ``total`` bytes of 64 KiB messages and read nothing; return bytes sent."""
    with raw_websocket(url) as (sock, protocol):
        sock.settimeout(3)  # the server stops reading: our sends block, then time out
        sent = 0
        try:
            while sent < total:
                protocol.send_binary(b"z" * 65536)
                sock.sendall(b"".join(protocol.data_to_send()))
                sent += 65536
        except TimeoutError:
            pass
        return sent


async def test_a_client_that_never_reads_is_slowed_not_buffered(live_server: LiveServer) -> None:
    total = 64 * 1024 * 1024
    sent = await asyncio.to_thread(flood_without_reading, f"{live_server.ws_url}/ws", total)
    # The echoes fill the socket, the handler waits, Quart's bounded queue
    # fills, and the server stops reading: the client cannot push it all.
    assert sent < total / 2
    async with connect(f"{live_server.ws_url}/ws") as other:
        await other.send("still served")
        assert await other.recv() == "still served"


async def test_foreign_origin_is_refused_before_accept(live_server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{live_server.ws_url}/ws", origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("server", SERVERS)
async def test_sigterm_to_every_process_closes_clients_at_once(server: str) -> None:
    """As systemd stops a service: SIGTERM to the main process and its workers."""
    with run_server(server=server, options=("--graceful-timeout", "10")) as live_server:
        async with (
            connect(f"{live_server.ws_url}/ws") as one,
            connect(f"{live_server.ws_url}/ws") as two,
        ):
            await one.send("ping")
            assert await one.recv() == "ping"
            os.killpg(live_server.process.pid, signal.SIGTERM)
            for ws in (one, two):
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 3)  # well before the graceful timeout
                assert closed.value.rcvd is not None, "dropped without a close frame"
                assert closed.value.rcvd.code == GOING_AWAY[live_server.name]


# Hypercorn on asyncio's own loop (no uvloop: Windows) from Python 3.12: on
# SIGTERM its worker awaits asyncio.Server.wait_closed(), which since 3.12 waits
# for every open connection, before its graceful timeout: websockets are never
# closed and the worker never ends. uvloop's server does not wait (README.md,
# Deploy). This canary fails the day Hypercorn stops hanging there.
HYPERCORN_HANGS_ON_SIGTERM = not UVLOOP and sys.version_info >= (3, 12)


async def test_sigterm_closes_clients_with_going_away(
    live_server: LiveServer, request: pytest.FixtureRequest
) -> None:
    if live_server.name == "hypercorn" and HYPERCORN_HANGS_ON_SIGTERM:
        reason = "Hypercorn hangs in Server.wait_closed() without uvloop on Python 3.12+"
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    async with connect(f"{live_server.ws_url}/ws") as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
        started = time.monotonic()
        live_server.process.terminate()  # SIGTERM
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 20)
        assert closed.value.rcvd is not None, "dropped without a close frame"
        assert closed.value.rcvd.code == GOING_AWAY[live_server.name]
        assert time.monotonic() - started < 15
    status = await asyncio.to_thread(live_server.process.wait, 15)
    assert status == EXIT_ON_SIGTERM[live_server.name]
