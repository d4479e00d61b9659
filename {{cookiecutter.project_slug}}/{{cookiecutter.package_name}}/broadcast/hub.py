"""The local fan-out: one bounded queue per subscribed websocket of this process.

Subscribers listen to a topic: ``EVERYONE`` for ``/ws/broadcast``, or a room's
name. Delivering never waits on a subscriber: one whose queue is full is cut
off, and ``subscription`` closes its socket with 1013.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from prometheus_client import Counter, Gauge
from quart import websocket

from ..metrics import CLOSED

DELIVERIES = Counter("broadcast_deliveries", "Messages queued for a subscriber, one per client.")
SUBSCRIBERS = Gauge("broadcast_subscribers", "Websockets subscribed to the broadcast or a room.")

EVERYONE = ""  # the topic of /ws/broadcast; no room has an empty name
TRY_AGAIN_LATER = 1013


class Subscriber:
    """One connection's queue, and the task to interrupt if it falls behind."""

    __slots__ = ("overflowed", "queue", "task", "topic")

    def __init__(self, topic: str, queue_size: int) -> None:
        self.topic = topic
        self.queue: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self.task = asyncio.current_task()
        self.overflowed = False


class Hub:
    """Delivers each message to every subscriber of its topic without waiting on one."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.topics: dict[str, set[Subscriber]] = {}
        SUBSCRIBERS.set_function(lambda: sum(map(len, self.topics.values())))

    def subscriber_count(self, topic: str = EVERYONE) -> int:
        return len(self.topics.get(topic, ()))

    @contextmanager
    def subscribe(self, topic: str = EVERYONE) -> Iterator[Subscriber]:
        """Register a subscriber for the block; it is removed however the block ends."""
        subscriber = Subscriber(topic, self.queue_size)
        self.topics.setdefault(topic, set()).add(subscriber)
        try:
            yield subscriber
        finally:
            self.remove(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        subscribers = self.topics.get(subscriber.topic)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:  # a room nobody is in costs nothing
                del self.topics[subscriber.topic]

    def deliver(self, message: Any, topic: str = EVERYONE) -> None:
        """Queue ``message`` for the topic's subscribers; cut off those whose queue is full."""
        full = []
        subscribers = self.topics.get(topic, ())
        # No await in this loop, so no subscriber can come or go while it runs.
        for subscriber in subscribers:
            try:
                subscriber.queue.put_nowait(message)
            except asyncio.QueueFull:
                full.append(subscriber)
        DELIVERIES.inc(len(subscribers) - len(full))
        for subscriber in full:
            self.cut_off(subscriber)

    def cut_off(self, subscriber: Subscriber) -> None:
        """Drop a subscriber that stopped reading and interrupt its handler.

        Cancelling the task frees its queue now, even while a send to its
        socket is blocked; ``subscription`` then closes the socket with 1013.
        """
        self.remove(subscriber)
        subscriber.overflowed = True
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        if subscriber.task is not None:
            subscriber.task.cancel()


@asynccontextmanager
async def subscription(hub: Hub, topic: str = EVERYONE) -> AsyncIterator[Subscriber]:
    """Subscribe the current websocket for the block; close it with 1013 if it falls behind.

    The one place that handles the slow-client cut-off: the cancellation that
    ``Hub.cut_off`` starts ends here, and nowhere else.
    """
    with hub.subscribe(topic) as subscriber:
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
