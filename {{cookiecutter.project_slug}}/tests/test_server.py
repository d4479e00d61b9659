"""The app under Hypercorn with hypercorn.toml, driven by an independent client."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .live_server import LiveServer


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


async def test_foreign_origin_is_refused_before_accept(live_server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{live_server.ws_url}/ws", origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


async def test_sigterm_closes_clients_with_going_away(live_server: LiveServer) -> None:
    async with connect(f"{live_server.ws_url}/ws") as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
        started = time.monotonic()
        live_server.process.terminate()  # SIGTERM
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 20)
        assert closed.value.rcvd is not None, "dropped without a close frame"
        assert closed.value.rcvd.code in (1001, 1012)
        assert time.monotonic() - started < 15
    assert await asyncio.to_thread(live_server.process.wait, 15) == 0
