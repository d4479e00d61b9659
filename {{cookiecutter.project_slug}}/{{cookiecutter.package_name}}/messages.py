"""Receiving websocket messages, with a size limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from quart import current_app, websocket

from .metrics import current_metrics, route_label

Message = str | bytes

MESSAGE_TOO_BIG = 1009


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
    metrics = current_metrics()
    received = metrics.messages_received.labels(route_label())
    while True:
        message = await websocket.receive()
        received.inc()
        if too_big(message, limit):
            metrics.closed.labels("too_big").inc()
            await websocket.close(MESSAGE_TOO_BIG, "message too big")
            return
        yield message
