"""Close websockets with 1001 (going away) when the server stops.

Two ways a worker stops, and what would happen to its clients without this:
- SIGTERM to Hypercorn's main process: Hypercorn stops accepting, waits
  ``graceful_timeout`` for open connections to end, then cancels them, which
  drops websockets without a close frame (or closes them with 1011).
- SIGTERM to the worker process itself (systemd's default ``KillMode``, or
  ``pkill``): the worker has no handler for it and dies on the spot.
``CloseOnShutdown`` sends every open websocket a 1001 close in both cases, so
that clients know to reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Awaitable
from typing import cast

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


class OpenSocket:
    """One websocket, as the middleware sees it; in the scope under ``OPEN_SOCKET``."""

    __slots__ = ("closed", "send")

    def __init__(self, send: ASGISendCallable) -> None:
        self.send = send
        self.closed = False

    def send_data(self, data: str | bytes) -> Awaitable[None]:
        """Send one message straight to the server, unless the socket was closed.

        The short way to send one message to many sockets: it skips Quart's
        send (and its ``websocket_sent`` signal); accept the connection first.
        It returns the server's own ``send`` rather than wrapping it in another
        coroutine: one frame less per message and subscriber.
        """
        if self.closed:
            return nothing_to_send()
        if isinstance(data, str):
            return self.send({"type": "websocket.send", "bytes": None, "text": data})
        return self.send({"type": "websocket.send", "bytes": data, "text": None})


async def nothing_to_send() -> None:
    """What a send returns when it has nothing to send."""


OPEN_SOCKET = "quart_ws.open_socket"  # the scope key


class CloseOnShutdown:
    """ASGI middleware that closes open websockets with 1001 when the server stops."""

    def __init__(self, app: ASGIFramework) -> None:
        self.app = app
        self.open_sockets: set[OpenSocket] = set()
        self.exiting: asyncio.Task[None] | None = None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            self.handle_sigterm_in_worker()
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        sock = OpenSocket(send)
        scope = cast(Scope, {**scope, OPEN_SOCKET: sock})

        async def tracking_send(message: ASGISendEvent) -> None:
            if sock.closed:
                return  # closed for the shutdown: the app's late sends go nowhere
            if message["type"] == "websocket.accept":
                self.open_sockets.add(sock)
            elif message["type"] == "websocket.close":
                sock.closed = True
                self.open_sockets.discard(sock)
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            await self.close(sock)
            raise
        finally:
            self.open_sockets.discard(sock)

    async def close(self, sock: OpenSocket) -> None:
        if sock in self.open_sockets:  # accepted, and not closed yet
            sock.closed = True
            self.open_sockets.discard(sock)
            # The connection may be going away under us: a failed close changes nothing.
            with contextlib.suppress(Exception):
                await sock.send(CLOSE_GOING_AWAY)

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(sock) for sock in list(self.open_sockets)))

    def handle_sigterm_in_worker(self) -> None:
        """In a worker process the server left without a SIGTERM handler, add one."""
        if multiprocessing.parent_process() is None:
            return  # the main process: the server handles its own signals
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.start_exit, loop)

    def start_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        self.exiting = loop.create_task(self.exit_on_sigterm())

    async def exit_on_sigterm(self) -> None:
        """Close every websocket with 1001, then die of SIGTERM as before."""
        await self.close_all()
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
