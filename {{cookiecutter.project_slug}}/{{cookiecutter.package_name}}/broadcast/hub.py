"""The local fan-out: every subscribed websocket of this process, by topic.

Subscribers listen to a topic: ``EVERYONE`` for ``/ws/broadcast``, or a room's
name. Each keeps a bounded line of messages: a queue its handler reads
(``QueueSubscriber``, for ``collect_websocket``) or an outbox that sends them
itself (``outbox.Outbox``, for the built-in routes). Delivering never waits on
a subscriber: one whose line is full is cut off, and ``subscription`` closes
its socket with 1013.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge
from quart import websocket

from ..metrics import CLOSED

DELIVERIES = Counter("broadcast_deliveries", "Messages queued for a subscriber, one per client.")
SUBSCRIBERS = Gauge("broadcast_subscribers", "Websockets subscribed to the broadcast or a room.")

EVERYONE = ""  # the topic of /ws/broadcast; no room has an empty name
TRY_AGAIN_LATER = 1013


class Subscriber:
    """One connection's messages on their way out, and the task to interrupt if it falls behind.

    ``offer`` takes a message without waiting, or answers False when too many
    already wait; ``close`` drops what waits.
    """

    __slots__ = ("overflowed", "task", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.task = asyncio.current_task()
        self.overflowed = False

    def offer(self, message: Any) -> bool:
        raise NotImplementedError

    def beat(self, control: Any) -> None:
        """Send a control frame if nothing else is on its way; none by default."""

    def close(self) -> None:
        raise NotImplementedError


class QueueSubscriber(Subscriber):
    """A subscriber whose handler reads its messages from a bounded queue."""

    __slots__ = ("queue",)

    def __init__(self, topic: str, queue_size: int) -> None:
        super().__init__(topic)
        self.queue: asyncio.Queue[Any] = asyncio.Queue(queue_size)

    def offer(self, message: Any) -> bool:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    def close(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


S = TypeVar("S", bound=Subscriber)


class Hub:
    """Delivers each message to every subscriber of its topic without waiting on one."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.topics: dict[str, set[Subscriber]] = {}
        SUBSCRIBERS.set_function(lambda: sum(map(len, self.topics.values())))

    def subscriber_count(self, topic: str = EVERYONE) -> int:
        return len(self.topics.get(topic, ()))

    @contextmanager
    def subscribe(self, subscriber: S) -> Iterator[S]:
        """Register ``subscriber`` for the block; it is removed however the block ends."""
        self.topics.setdefault(subscriber.topic, set()).add(subscriber)
        try:
            yield subscriber
        finally:
            self.remove(subscriber)
            subscriber.close()  # again after a cut-off: then it has nothing left to do

    def remove(self, subscriber: Subscriber) -> None:
        subscribers = self.topics.get(subscriber.topic)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:  # a room nobody is in costs nothing
                del self.topics[subscriber.topic]

    def deliver(self, message: Any, topic: str = EVERYONE) -> None:
        """Queue ``message`` for the topic's subscribers; cut off those whose queue is full."""
        # A copy: an outbox sends at once, and what a send sets off must not
        # change the set while this loop runs.
        subscribers = tuple(self.topics.get(topic, ()))
        full = [subscriber for subscriber in subscribers if not subscriber.offer(message)]
        DELIVERIES.inc(len(subscribers) - len(full))
        for subscriber in full:
            self.cut_off(subscriber)

    def beat(self, control: Any, topic: str) -> None:
        """Hand a control frame (a heartbeat) to the topic's idle subscribers; never queued."""
        for subscriber in tuple(self.topics.get(topic, ())):
            subscriber.beat(control)

    def cut_off(self, subscriber: Subscriber) -> None:
        """Drop a subscriber that stopped reading and interrupt its handler.

        Cancelling the task frees its queue now, even while a send to its
        socket is blocked; ``subscription`` then closes the socket with 1013.
        """
        self.remove(subscriber)
        subscriber.overflowed = True
        subscriber.close()
        if subscriber.task is not None:
            subscriber.task.cancel()


@asynccontextmanager
async def subscription(hub: Hub, subscriber: S) -> AsyncIterator[S]:
    """Subscribe the current websocket for the block; close it with 1013 if it falls behind.

    The one place that handles the slow-client cut-off: the cancellation that
    ``Hub.cut_off`` starts ends here, and nowhere else.
    """
    with hub.subscribe(subscriber):
        try:
            yield subscriber
        except asyncio.CancelledError:
            if not subscriber.overflowed:
                raise  # a disconnect or a shutdown, not ours to handle
            if subscriber.task is not None:
                subscriber.task.uncancel()
    if subscriber.overflowed:
        CLOSED.labels("slow").inc()
        await websocket.close(TRY_AGAIN_LATER, "too slow: fell behind the broadcast")
