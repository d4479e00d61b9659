"""Broadcast: ``broadcast(message)`` reaches every ``collect_websocket`` handler.

``broadcast()`` hands the message to the broker (see ``broker.py``), which
delivers it to the hub of every process it reaches; each hub puts it on the
bounded queue of each of its connections. Call it from any code running in
the app context: a route, a websocket handler, or a background task started
with ``app.add_background_task``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from quart import Quart, current_app, websocket

from .broker import Broker
from .config import positive_int
from .hub import Hub
from .messages import Message

TRY_AGAIN_LATER = 1013

Handler = Callable[..., Awaitable[None]]


def init_broadcast(app: Quart) -> None:
    """Create this process's hub and broker, and expose the broadcast channel."""
    broker = Broker(app, Hub(positive_int(app.config, "BROADCAST_QUEUE_SIZE")))
    app.extensions["broker"] = broker
    app.extensions["health_checks"][broker.name] = broker.health
    app.extensions["channels"]["broadcast"] = "/ws/broadcast"


async def broadcast(message: Message) -> None:
    """Send ``message`` to every broadcast websocket (text stays text, bytes bytes).

    Raises ``BroadcastUnavailable`` if the broker cannot take it (Redis down).
    """
    broker: Broker = current_app.extensions["broker"]
    await broker.publish(message)


def collect_websocket(handler: Handler) -> Handler:
    """Give a websocket handler its own bounded queue of broadcast messages.

    The handler is called with the queue as first argument. If the client
    stops reading and the queue fills, the handler is cancelled and the socket
    closed with 1013 (try again later): one slow client cannot hold up the
    others or grow the server's memory.
    """

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> None:
        hub: Hub = current_app.extensions["broker"].hub
        with hub.subscribe() as subscriber:
            try:
                await handler(subscriber.queue, *args, **kwargs)
            except asyncio.CancelledError:
                if not subscriber.overflowed:
                    raise  # a disconnect or a shutdown, not ours to handle
                if subscriber.task is not None:
                    subscriber.task.uncancel()
        if subscriber.overflowed:
            await websocket.close(TRY_AGAIN_LATER, "too slow: fell behind the broadcast")

    return wrapper
