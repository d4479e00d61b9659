"""Push delivery: a subscriber's messages go out from the publisher, in order.

A queue and a sender task per subscriber would cost one task wake-up per
message and subscriber, even when the socket has room and the write finishes
at once. An ``Outbox`` sends a delivered message straight away instead. From
Python 3.12 the send starts eagerly (``asyncio.eager_task_factory``): a write
that completes without waiting is never scheduled at all. Only a send that
must wait for the client (the server's flow control) goes on as a task, and
the messages delivered meanwhile wait behind it, in order and bounded: when
the line is full the subscriber is cut off, as with a queue. Python 3.11 has
no eager tasks, so there each delivery schedules its send as a new task.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from prometheus_client import Counter
from quart import websocket

from ..shutdown import OPEN_SOCKET, OpenSocket
from .hub import Subscriber

log = logging.getLogger(__name__)

Send = Callable[[Any], Awaitable[None]]


if sys.version_info >= (3, 12):

    def start_send(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coroutine`` now, up to its first wait; schedule it only if it waits."""
        return asyncio.eager_task_factory(asyncio.get_running_loop(), coroutine)

else:

    def start_send(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(coroutine)


class Outbox(Subscriber):
    """A subscriber whose messages are sent as they are delivered, at most ``limit`` waiting.

    Messages delivered before ``open`` wait (a room replays its history
    first). A send that fails means the client is gone: later messages are
    dropped, and the handler learns of the disconnect from its own receive.
    """

    __slots__ = ("gone", "limit", "pump", "send", "sent", "waiting")

    def __init__(self, topic: str, limit: int) -> None:
        super().__init__(topic)
        self.limit = limit
        self.waiting: deque[Any] = deque()
        self.send: Send | None = None
        self.sent: Counter | None = None
        self.pump: asyncio.Task[None] | None = None  # the send that had to wait
        self.gone = False

    def offer(self, message: Any) -> bool:
        if self.gone:
            return True
        if len(self.waiting) >= self.limit:
            return False
        self.waiting.append(message)
        if self.pump is None and self.send is not None:
            self.start_pump()
        return True

    def open(self, send: Send, sent: Counter | None = None) -> None:
        """Send with ``send`` from now on, starting with the messages that waited.

        ``sent`` counts the messages handed to ``send``.
        """
        self.send, self.sent = send, sent
        if self.waiting and self.pump is None:
            self.start_pump()

    def close(self) -> None:
        self.waiting.clear()
        if self.pump is not None:
            self.pump.cancel()

    def start_pump(self) -> None:
        pump = start_send(self.drain())
        if pump.done():  # every write completed at once
            self.finished(pump)
        else:
            self.pump = pump
            pump.add_done_callback(self.finished)

    async def drain(self) -> None:
        assert self.send is not None
        count = 0
        try:
            while self.waiting:
                count += 1
                await self.send(self.waiting.popleft())
        finally:
            if self.sent is not None:
                self.sent.inc(count)  # once per drain, not per message

    def finished(self, pump: asyncio.Task[None]) -> None:
        self.pump = None
        if pump.cancelled():
            return
        error = pump.exception()
        if error is not None:
            self.gone = True
            self.waiting.clear()
            if not isinstance(error, OSError):  # not just a closed connection
                log.error("sending to a subscriber failed", exc_info=error)
        elif self.waiting:  # delivered after the pump's last look, before this callback
            self.start_pump()


def direct_send() -> Send:
    """The current websocket's shortest way to the server; accept it first.

    Straight to the server through the shutdown middleware's ``OpenSocket``
    (skipping Quart's send path), or Quart's ``send`` if the app runs without it.
    """
    sock = websocket.scope.get(OPEN_SOCKET)
    return sock.send_data if isinstance(sock, OpenSocket) else websocket.send
