"""The one place that relies on Quart beyond its documented API.

The classes here plug into Quart's documented extension points
(``app.asgi_websocket_class``, ``app.websocket_class`` and, from Quart 0.23,
``Websocket.buffer_class``). What they still assume about Quart's internals is
listed below and checked against each supported release by
``tests/test_quart_internals.py``, which fails the day an upgrade changes it:

- Quart reads a received message as ``event.get("bytes") or event["text"]``,
  which turns an empty binary message into None (Hypercorn) or a KeyError
  (uvicorn);
- up to 0.22 received messages wait in the connection's ``queue``; from 0.23
  (Python 3.13 and later) in the websocket's ``buffer``;
- ``Websocket._receive`` (up to 0.22) and ``Websocket.buffer.get`` (0.23) read
  one message, without the ``accept()`` that Quart's ``receive`` repeats for
  every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable
from typing import Any, cast

from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    WebsocketScope,
)
from prometheus_client import Counter
from quart import Quart
from quart.asgi import ASGIWebsocketConnection
from quart.wrappers import Websocket

from .metrics import current_metrics, route_label
from .sockets import OpenSocket, socket_of

# Messages received but not yet read by the handler. Once this many wait,
# Quart stops reading, the server stops reading the socket, and TCP flow
# control slows the client down: a client that sends without reading its
# replies cannot grow the server's memory.
RECEIVE_QUEUE_SIZE = 16
# Once the client is gone, how often a handler still waiting on a receive is
# cancelled (WebsocketConnection.guard_after_disconnect).
RECANCEL_SECONDS = 0.2


def keep_empty_bytes(receive: ASGIReceiveCallable) -> ASGIReceiveCallable:
    """Wrap ``receive`` so that an empty binary message reaches the handler as ``b""``."""

    async def receive_event() -> ASGIReceiveEvent:
        event = await receive()
        if event["type"] == "websocket.receive" and event.get("bytes") == b"":
            # ``None or b""`` is what Quart's ``bytes or text`` then reads.
            return {"type": "websocket.receive", "bytes": None, "text": b""}  # type: ignore[typeddict-item]
        return event

    return receive_event


if sys.version_info >= (3, 13):  # Quart 0.23, as pyproject.toml pins it
    from quart.wrappers.base import ClientDisconnectedError

    class BoundedBuffer:
        """Quart's ``Buffer`` of received messages, bounded."""

        def __init__(self) -> None:
            self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(RECEIVE_QUEUE_SIZE)

        async def put(self, data: str | bytes) -> None:
            # Shut down: the handler has ended and nobody will read it.
            with contextlib.suppress(asyncio.QueueShutDown):
                await self.queue.put(data)

        async def get(self) -> str | bytes:
            try:
                return await self.queue.get()
            except asyncio.QueueShutDown:
                raise ClientDisconnectedError() from None

        def disconnect(self) -> None:
            self.queue.shutdown()


class WebsocketConnection(ASGIWebsocketConnection):
    """Quart's websocket connection: empty bytes kept, received messages bounded."""

    if sys.version_info >= (3, 13):

        async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
            await super().__call__(keep_empty_bytes(receive), send)

        async def handle_websocket(self, websocket: Websocket, send: ASGISendCallable) -> None:
            try:
                await super().handle_websocket(websocket, send)
            finally:
                # Quart keeps receiving after the handler ends: a put waiting
                # on a full buffer must not wait forever.
                websocket.buffer.disconnect()

    else:
        handler: asyncio.Task[Any] | None = None
        websocket: DirectSendWebsocket | None = None
        ended = False  # the connection is over: nothing left to guard

        def __init__(self, app: Quart, scope: WebsocketScope) -> None:
            super().__init__(app, scope)
            self.queue = asyncio.Queue(RECEIVE_QUEUE_SIZE)
            self.disconnected = False

        async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
            receive = keep_empty_bytes(receive)
            try:
                await super().__call__(receive, send)
            finally:
                self.ended = True
                # The cancelled handler's traceback holds the frames that hold
                # this connection: a reference cycle, and all the socket held
                # would wait for the next full collection of the garbage collector.
                self.handler = self.websocket = None
            # Quart up to 0.22 stops receiving once the handler ends. Messages
            # the client sent before it saw the close then fill the server's
            # own queue, and Hypercorn waits forever to hand over the
            # disconnect: the connection is never freed. Read on until the
            # disconnect, as Quart 0.23 does.
            while not self.disconnected:
                self.disconnected = (await receive())["type"] == "websocket.disconnect"

        async def handle_websocket(self, websocket: Websocket, send: ASGISendCallable) -> None:
            self.handler = asyncio.current_task()
            self.websocket = cast(DirectSendWebsocket, websocket)
            await super().handle_websocket(websocket, send)

        async def handle_messages(self, receive: ASGIReceiveCallable) -> None:
            await super().handle_messages(receive)  # returns on the disconnect
            self.disconnected = True
            # Quart cancels the handler now; look again once that has landed.
            loop = asyncio.get_running_loop()
            loop.call_later(RECANCEL_SECONDS, self.guard_after_disconnect)

        def guard_after_disconnect(self) -> None:
            """After the client is gone: cancel the handler while it waits on a receive.

            Quart up to 0.22 cancels the handler once when the disconnect
            arrives, and its receive waits on a queue nothing fills any more
            (0.23 shuts its buffer down instead). That cancel can be lost: on
            Python 3.11, ``asyncio.wait_for`` returns the result of an
            awaitable that finished as the cancel came in (database clients
            wrap every command in one), and the handler runs on into a receive;
            Quart then waits on it forever and the socket is never freed. A
            handler in its own clean-up (no receive) is left to finish it:
            a cancel there would cut that clean-up short.
            """
            if self.ended or (self.handler is not None and self.handler.done()):
                return
            if self.handler and self.websocket and self.websocket.receiving:
                self.handler.cancel()
            asyncio.get_running_loop().call_later(RECANCEL_SECONDS, self.guard_after_disconnect)


class DirectSendWebsocket(Websocket):
    """Quart's websocket, sending through the app's one send path (``sockets.py``).

    Quart's ``send`` first yields to the event loop, then calls ``accept()``
    again, for every message, and its ``receive`` calls ``accept()`` (which
    builds a ``Headers`` object) for every message too. Here the connection is
    accepted once, and a send waits only when the server's flow control says
    the client is behind, as in ``websockets`` and Starlette: a handler that
    sends a long burst holds the event loop until then. It also skips Quart's
    ``websocket_sent`` signal (nothing here listens to it).

    Why it stays: with Quart's own ``send`` and ``receive`` an echo costs the
    server about 14 % more CPU (the template's paired bench, uvicorn), and the
    app goes from 0.98x the cost of Quart's own example to 1.17x.
    ``tests/test_quart_internals.py`` checks each thing it relies on.
    """

    _socket: OpenSocket | None = None  # where sends go, once accepted
    _sent: Counter | None = None  # this route's count of messages sent
    _receiving = False  # accepted by the first receive
    receiving = False  # waiting for a message now (guard_after_disconnect)

    if sys.version_info >= (3, 13):
        buffer_class = BoundedBuffer  # type: ignore[assignment]

        def next_message(self) -> Awaitable[str | bytes]:
            return self.buffer.get()

    else:

        def next_message(self) -> Awaitable[str | bytes]:
            return cast(Awaitable[str | bytes], self._receive())

    async def receive(self) -> str | bytes:
        if not self._receiving:
            await self.accept()  # idempotent: a no-op if the handler accepted
            self._receiving = True
        self.receiving = True
        try:
            return await self.next_message()
        finally:
            self.receiving = False

    async def send(self, data: str | bytes) -> None:
        if self._socket is None or self._sent is None:
            await self.accept()  # idempotent: a no-op if the handler accepted
            self._socket = socket_of(self.scope)
            self._sent = current_metrics().messages_sent.labels(route_label())
        await self._socket.send_data(data)
        self._sent.inc()


def use_quart_internals(app: Quart) -> None:
    """Install this module's classes through Quart's extension points."""
    app.asgi_websocket_class = WebsocketConnection
    app.websocket_class = DirectSendWebsocket
