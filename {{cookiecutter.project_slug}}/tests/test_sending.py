"""Sending: each message goes straight to the server, without an extra loop turn."""

from __future__ import annotations

import asyncio

from quart import websocket

from .conftest import AppFactory

BURST = 20


async def test_a_burst_of_sends_arrives_whole_and_in_order_without_yielding(
    make_app: AppFactory,
) -> None:
    app = await make_app()
    turns = 0  # how often the event loop ran another task
    turns_during_burst: list[int] = []

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    @app.websocket("/burst")
    async def burst() -> None:
        await websocket.accept()
        before = turns
        for number in range(BURST):
            await websocket.send(str(number))
        turns_during_burst.append(turns - before)

    counter = asyncio.create_task(count_turns())
    try:
        async with app.test_client().websocket("/burst") as ws:
            received = [await asyncio.wait_for(ws.receive(), 5) for _ in range(BURST)]
    finally:
        counter.cancel()
    assert received == [str(number) for number in range(BURST)]
    # Quart's own send yields before every message: BURST turns at least.
    assert turns_during_burst == [0]
