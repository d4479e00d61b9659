"""A cap on open websockets per process, checked before anything is made for one.

Past ``QUART_MAX_CONNECTIONS`` a handshake is answered with 503 and a
``Retry-After`` header (or, on a server without the ASGI websocket response
extension, refused with a close), before Quart creates any per-connection
state: the process keeps the memory and file descriptors it needs for the
connections it has.
"""

from __future__ import annotations

from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGISendCallable,
    Scope,
)

from .metrics import Metrics

RETRY_AFTER_SECONDS = 5


class ConnectionCap:
    """ASGI middleware: at most ``limit`` websockets of this process at once."""

    def __init__(self, app: ASGIFramework, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = limit
        self.open = 0
        self.refused = metrics.handshakes_refused.labels("cap")
        metrics.connections.set_function(lambda: self.open)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        if self.open >= self.limit:
            self.refused.inc()
            await receive()  # websocket.connect: some servers answer nothing before it
            await refuse(scope, send)
            return
        self.open += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1


async def refuse(scope: Scope, send: ASGISendCallable) -> None:
    """Answer the handshake with 503 + Retry-After where the server allows it."""
    extensions = scope.get("extensions") or {}
    if "websocket.http.response" not in extensions:  # type: ignore[operator]
        await send({"type": "websocket.close", "code": 1013, "reason": "server full"})
        return
    body = b'{"error": "too many open websockets on this server: retry later"}'
    headers = [
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        (b"content-type", b"application/json"),
        # A length, not chunks: websocket clients read the refusal as plain HTTP/1.1.
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
