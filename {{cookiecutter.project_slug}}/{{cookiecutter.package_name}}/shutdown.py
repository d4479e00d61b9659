"""Close websockets with 1001 (going away) when the server stops.

On SIGTERM Hypercorn stops accepting, waits ``graceful_timeout`` for open
connections to end, then cancels them, which would drop websockets without
a close frame (or close them with 1011). This middleware turns that
cancellation into a 1001 close, so that clients know to reconnect.
"""

from __future__ import annotations

import asyncio

from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)

CLOSE_GOING_AWAY: ASGISendEvent = {
    "type": "websocket.close",
    "code": 1001,
    "reason": "server shutting down",
}


class CloseOnShutdown:
    """ASGI middleware that sends 1001 to websockets cancelled by the server."""

    def __init__(self, app: ASGIFramework) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        is_open = False

        async def tracking_send(message: ASGISendEvent) -> None:
            nonlocal is_open
            if message["type"] == "websocket.accept":
                is_open = True
            elif message["type"] == "websocket.close":
                is_open = False
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if is_open:
                await send(CLOSE_GOING_AWAY)
            raise
