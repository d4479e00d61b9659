"""The one way a message reaches a websocket: ``OpenSocket.send_data``.

Every message the app sends goes through it: a handler's ``websocket.send``
(``quart_internals.DirectSendWebsocket``), such as the echo
{%- if cookiecutter.broadcast %}, and each
broadcast delivery (``broadcast/outbox.py``){% endif %}. The shutdown middleware
makes one per websocket and puts it in the scope; ``current_socket()`` finds it.

Once a socket is closed (by its handler, by the app from elsewhere, or for the
shutdown) every later send raises ``SocketClosed``, as a send after the close
does in ``websockets`` and Starlette; the app's error handler ends the
handler quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping
from typing import Any

from hypercorn.typing import ASGISendCallable, ASGISendEvent
from quart import websocket
from quart.typing import ResponseReturnValue

OPEN_SOCKET = "quart_ws.open_socket"  # the scope key


class SocketClosed(ConnectionError):
    """A send to a websocket that is already closed."""


class OpenSocket:
    """One websocket's connection to the server, and whether it is still open."""

    __slots__ = ("closed", "closing", "open_sockets", "server_send", "user")

    def __init__(self, server_send: ASGISendCallable, open_sockets: set[OpenSocket]) -> None:
        self.server_send = server_send
        self.open_sockets = open_sockets  # holds this socket from accept to close
        self.closed = False
        self.closing: asyncio.Future[None] | None = None  # a close started by ``end``
        # Who is at the other end, once known{% if cookiecutter.users %} (users/identity.py){% endif %}; None: anonymous.
        self.user: str | None = None

    def send_data(self, data: str | bytes) -> Coroutine[Any, Any, None]:
        """Send one message; ``SocketClosed`` once the socket is closed.

        It returns the server's own ``send`` rather than wrapping it in another
        coroutine: one frame less per message and subscriber. It skips Quart's
        ``websocket_sent`` signal.
        """
        if self.closed:
            raise SocketClosed("the websocket is closed")
        # Both servers' ``send`` is a coroutine function; the outbox steps it.
        if isinstance(data, str):
            event: ASGISendEvent = {"type": "websocket.send", "bytes": None, "text": data}
        else:
            event = {"type": "websocket.send", "bytes": data, "text": None}
        return self.server_send(event)  # type: ignore[return-value]

    async def send_event(self, event: ASGISendEvent) -> None:
        """The ``send`` that Quart is given: its accept, close and handshake answers."""
        if self.closed:
            if event["type"] == "websocket.send":
                raise SocketClosed("the websocket is closed")
            return  # Quart's own close, after ours
        if event["type"] == "websocket.accept":
            self.open_sockets.add(self)
        elif event["type"] == "websocket.close":
            self.mark_closed()
        await self.server_send(event)

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code``, unless it is closed already."""
        if not self.closed:
            self.mark_closed()
            await self.send_close(code, reason)

    def end(self, code: int, reason: str) -> None:
        """Close from outside the handler, without waiting: the close goes on as a task."""
        if not self.closed:
            self.mark_closed()  # at once: the handler's next send raises
            self.closing = asyncio.ensure_future(self.send_close(code, reason))

    async def send_close(self, code: int, reason: str) -> None:
        # The connection may be going away under us: a failed close changes nothing.
        with contextlib.suppress(Exception):
            await self.server_send({"type": "websocket.close", "code": code, "reason": reason})

    def mark_closed(self) -> None:
        self.closed = True
        self.open_sockets.discard(self)


def socket_of(scope: Mapping[str, Any]) -> OpenSocket:
    """The ``OpenSocket`` the app's middleware put in a websocket's ``scope``."""
    sock: OpenSocket = scope[OPEN_SOCKET]
    return sock


def current_socket() -> OpenSocket:
    """The current websocket's ``OpenSocket``."""
    return socket_of(websocket.scope)


async def end_quietly(error: SocketClosed) -> ResponseReturnValue:
    """The app's error handler for ``SocketClosed``: the handler just ends, nothing to log."""
    return "", 204  # the socket is closed: nothing of this reaches the client


async def nothing_to_send() -> None:
    """What a send returns when it has nothing to send."""
