"""Push delivery: a subscriber's messages go out from the publisher, in order.

A queue and a sender task per subscriber would cost one task wake-up per
message and subscriber, even when the socket has room and the write finishes
at once. An ``Outbox`` starts sending a delivered message right away, inside
``broadcast()``: a write that completes without waiting (nearly all of them)
never becomes a task. Only a send that must wait for the client (the server's
flow control) goes on as a task, and the messages delivered meanwhile wait
behind it, in order and bounded: when the line is full the subscriber is cut
off, as with a queue.

Why step a coroutine by hand (``send_now``) rather than use
``asyncio.eager_task_factory``: an eager task still costs a task object per
send, and Python 3.11 has no eager tasks at all. In the template repository's
paired bench, stepping by hand cut server CPU per delivery from 32.5-36.5 to
28.1-31.9 us on 3.13, and from 33.4-38.0 to 26.1-30.3 us on 3.11 (1,000
subscribers, uvicorn). Both servers the template offers give a coroutine as
their ``send``; so does ``sockets.OpenSocket.send_data``.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from prometheus_client import Counter

from ..sockets import OpenSocket
from .hub import Subscriber

log = logging.getLogger(__name__)

Send = Callable[[Any], Coroutine[Any, Any, None]]


def send_now(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coroutine`` now, up to its first wait; None if it finished, else its task.

    What ``asyncio.eager_task_factory`` does from Python 3.12, minus the task
    when nothing waits, and on every supported Python. An error raised before
    the first wait is raised here.
    """
    try:
        waiting_on = coroutine.send(None)
    except StopIteration:
        return None
    task = asyncio.ensure_future(finish(coroutine, waiting_on))
    # A task cancelled before its first step never resumes the coroutine: close
    # it then, so that the send's ``finally`` blocks still run.
    task.add_done_callback(lambda _: coroutine.close())
    return task


async def finish(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    await resume(coroutine, waiting_on)


@types.coroutine
def resume(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """Go on with ``coroutine`` from its first wait, as its own ``await`` would have."""
    while True:
        try:
            sent = yield waiting_on  # the task waits on what the send waits on
        except BaseException as error:  # the future failed, or the task was cancelled
            try:
                waiting_on = coroutine.throw(error)
            except StopIteration:
                return
        else:
            try:
                waiting_on = coroutine.send(sent)
            except StopIteration:
                return


class Outbox(Subscriber):
    """A subscriber whose messages are sent as they are delivered, at most ``limit`` waiting.

    Messages delivered before ``open`` wait (a room replays its history
    first). A send that fails means the client is gone: later messages are
    dropped, and the handler learns of the disconnect from its own receive.
    """

    __slots__ = ("gone", "limit", "pump", "send", "sent", "waiting")

    def __init__(self, topic: str, socket: OpenSocket, limit: int) -> None:
        super().__init__(topic, socket)
        self.limit = limit
        # Made by the first message that has to wait: most subscribers never
        # need one, and an empty deque is most of a kilobyte.
        self.waiting: deque[Any] | None = None
        self.send: Send | None = None
        self.sent: Counter | None = None
        self.pump: asyncio.Task[None] | None = None  # the send that had to wait
        self.gone = False

    def offer(self, message: Any) -> bool:
        if self.gone:
            return True
        if self.pump is None and self.send is not None and not self.waiting:
            # Nothing in flight and nothing waits: the message goes out now,
            # with no line and no drain of its own.
            if self.sent is not None:
                self.sent.inc()
            self.start(self.send, message)
            return True
        if self.waiting is None:
            self.waiting = deque()
        elif len(self.waiting) >= self.limit:
            return False
        self.waiting.append(message)
        return True

    def beat(self, control: Any) -> None:
        if self.pump is None and self.send is not None and not self.waiting and not self.gone:
            self.start(self.send, control)  # not counted: a control frame, not a message

    def open(self, send: Send, sent: Counter | None = None) -> None:
        """Send with ``send`` from now on, starting with the messages that waited.

        ``sent`` counts the messages handed to ``send``.
        """
        self.send, self.sent = send, sent
        if self.waiting and self.pump is None:
            self.start(self.drain, self.waiting.popleft())

    def close(self) -> None:
        self.waiting = None
        if self.pump is not None:
            self.pump.cancel()

    def start(self, send: Send, message: Any) -> None:
        """``send(message)`` now; if it must wait, it becomes the pump, and later messages wait."""
        try:
            pump = send_now(send(message))
        except Exception as error:
            self.fail(error)
            return
        if pump is not None:  # a send waits for the client
            self.pump = pump
            pump.add_done_callback(self.finished)

    async def drain(self, first: Any) -> None:
        """Send ``first``, then the messages that wait, in order."""
        assert self.send is not None
        count = 1
        try:
            await self.send(first)
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
            self.fail(error)
        elif self.waiting:  # delivered after the pump's last look, before this callback
            self.start(self.drain, self.waiting.popleft())

    def fail(self, error: BaseException) -> None:
        self.gone = True
        self.waiting = None
        if not isinstance(error, OSError):  # not just a closed connection
            log.error("sending to a subscriber failed", exc_info=error)
