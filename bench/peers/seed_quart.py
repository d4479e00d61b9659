"""The seed's own app: Quart's websocket example, as its docs write it.

The echo and the ``collect_websocket`` broadcast of Quart's websocket example
(``examples/websocket`` in Quart's repository), served by the same server with
the same settings as the template: the row that shows what the template adds
over plain Quart. Two changes only, so that the bench's clients can drive it:
the echo sends the message back unchanged (the example prefixes ``"echo "``),
and the broadcast route also reads what its client sends and broadcasts it
(the example leaves the publishing to the reader).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from quart import Quart, websocket

app = Quart(__name__)

connected_websockets: set[asyncio.Queue[Any]] = set()


def collect_websocket(func: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        connected_websockets.add(queue)
        try:
            return await func(queue, *args, **kwargs)
        finally:
            connected_websockets.remove(queue)

    return wrapper


async def broadcast(message: Any) -> None:
    for queue in connected_websockets:
        await queue.put(message)


@app.websocket("/ws")
async def ws() -> None:
    while True:
        data = await websocket.receive()
        await websocket.send(data)


@app.websocket("/ws/broadcast")
@collect_websocket
async def ws_broadcast(queue: asyncio.Queue[Any]) -> None:
    async def publish() -> None:  # not in the example: the bench's publisher sends here
        while True:
            await broadcast(await websocket.receive())

    publisher = asyncio.ensure_future(publish())
    try:
        while True:
            data = await queue.get()
            await websocket.send(data)
    finally:
        publisher.cancel()
