"""Close websockets with 1001 (going away) when the server stops.

Two ways a worker stops, and what would happen to its clients without this:
- SIGTERM to Hypercorn's main process: Hypercorn stops accepting, waits
  ``graceful_timeout`` for open connections to end, then cancels them, which
  drops websockets without a close frame (or closes them with 1011).
- SIGTERM to the worker process itself (systemd's default ``KillMode``, or
  ``pkill``): the worker has no handler for it and dies on the spot.
``CloseOnShutdown`` sends every open websocket a 1001 close in both cases, so
that clients know to reconnect. To know them, it gives each websocket its
``sockets.OpenSocket``, the one way the app sends to it. (On SIGTERM to
uvicorn's main process, uvicorn closes them itself first, with 1012.)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from typing import cast

from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope

from .sockets import OPEN_SOCKET, OpenSocket

GOING_AWAY = 1001


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
        sock = OpenSocket(send, self.open_sockets)
        scope = cast(Scope, {**scope, OPEN_SOCKET: sock})
        try:
            await self.app(scope, receive, sock.send_event)
        except asyncio.CancelledError:
            await self.close(sock)
            raise
        finally:
            sock.mark_closed()  # however the app ended: it holds no socket now

    async def close(self, sock: OpenSocket) -> None:
        if sock in self.open_sockets:  # accepted, and not closed yet
            await sock.close(GOING_AWAY, "server shutting down")

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
