"""Receiving websocket messages: a size limit, and backpressure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypercorn.typing import ASGIReceiveCallable, WebsocketScope
from quart import Quart, current_app, websocket
from quart.asgi import ASGIWebsocketConnection
from quart.signals import websocket_received

Message = str | bytes

MESSAGE_TOO_BIG = 1009
# Messages Quart may hold for a handler that has not read them yet.
RECEIVE_QUEUE_SIZE = 16


class BoundedWebsocketConnection(ASGIWebsocketConnection):
    """Quart's websocket connection, with a bounded receive queue.

    Quart buffers what a client sends in an unbounded queue, so a client that
    sends without reading its replies would grow the server's memory without
    limit. Once this queue is full Quart stops reading, the server stops
    reading the socket, and TCP flow control slows that client down.
    """

    def __init__(self, app: Quart, scope: WebsocketScope) -> None:
        super().__init__(app, scope)
        self.queue = asyncio.Queue(RECEIVE_QUEUE_SIZE)

    async def handle_messages(self, receive: ASGIReceiveCallable) -> None:
        """Quart's receiving loop, with an empty binary message kept as ``b""``.

        Quart reads ``event.get("bytes") or event["text"]``: None under
        Hypercorn, and a KeyError under uvicorn, which leaves "text" out.
        """
        while True:
            event = await receive()
            if event["type"] == "websocket.receive":
                data = event.get("bytes")
                message = data if data is not None else event.get("text") or ""
                await websocket_received.send_async(message)
                await self.queue.put(message)
            elif event["type"] == "websocket.disconnect":
                return


def too_big(message: Message, limit: int) -> bool:
    """Whether ``message`` is over ``limit`` bytes (text counted as UTF-8)."""
    if isinstance(message, bytes) or len(message) > limit:
        return len(message) > limit
    # A character is at most 4 bytes in UTF-8: most texts need no encoding.
    return 4 * len(message) > limit and len(message.encode()) > limit


async def incoming_messages() -> AsyncIterator[Message]:
    """Yield the client's messages; close with 1009 and stop on one too big.

    Hypercorn enforces its own limit before the app sees a message; this check
    covers other servers and the test client.
    """
    limit = current_app.config["MAX_MESSAGE_SIZE"]
    while True:
        message = await websocket.receive()
        if too_big(message, limit):
            await websocket.close(MESSAGE_TOO_BIG, "message too big")
            return
        yield message
