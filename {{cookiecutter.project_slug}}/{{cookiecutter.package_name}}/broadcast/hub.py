"""The local fan-out: every subscribed websocket of this process, by topic.

Subscribers listen to a topic: ``EVERYONE`` for ``/ws/broadcast``, or a room's
name. Each keeps a bounded line of messages: a queue its handler reads
(``QueueSubscriber``, for ``collect_websocket``) or an outbox that sends them
itself (``outbox.Outbox``, for the built-in routes). Delivering never waits on
a subscriber: one whose line is full is cut off, its socket closed with 1013.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from ..metrics import Metrics
from ..sockets import OpenSocket

EVERYONE = ""  # the topic of /ws/broadcast; no room has an empty name
TRY_AGAIN_LATER = 1013


class Subscriber:
    """One socket's messages on their way out.

    ``offer`` takes a message without waiting, or answers False when too many
    already wait; ``close`` drops what waits.
    """

    __slots__ = ("socket", "topic")

    def __init__(self, topic: str, socket: OpenSocket) -> None:
        self.topic = topic
        self.socket = socket

    def offer(self, message: Any) -> bool:
        raise NotImplementedError

    def beat(self, control: Any) -> None:
        """Send a control frame if nothing else is on its way; none by default."""

    def close(self) -> None:
        raise NotImplementedError


class QueueSubscriber(Subscriber):
    """A subscriber whose handler reads its messages from a bounded queue."""

    __slots__ = ("queue",)

    def __init__(self, topic: str, socket: OpenSocket, queue_size: int) -> None:
        super().__init__(topic, socket)
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

    def __init__(self, queue_size: int, metrics: Metrics | None = None) -> None:
        """``metrics``: the app's, which gain the hub's own; new ones if None (tests)."""
        self.queue_size = queue_size
        self.topics: dict[str, set[Subscriber]] = {}
        self.metrics = metrics = metrics or Metrics()
        self.deliveries = Counter(
            "broadcast_deliveries",
            "Messages queued for a subscriber, one per client.",
            registry=metrics.registry,
        )
        subscribers = Gauge(
            "broadcast_subscribers",
            "Subscriptions: to the broadcast, a room{% if cookiecutter.users %}, an inbox, a user's line{% endif %}.",
            registry=metrics.registry,
        )
        subscribers.set_function(lambda: sum(map(len, self.topics.values())))
        self.cut_offs = metrics.closed.labels("slow")

    def subscriber_count(self, topic: str = EVERYONE) -> int:
        return len(self.topics.get(topic, ()))

    @contextmanager
    def subscribe(self, subscriber: S) -> Iterator[S]:
        """Register ``subscriber`` for the block; it is removed however the block ends."""
        self.add(subscriber)
        try:
            yield subscriber
        finally:
            self.remove(subscriber)
            subscriber.close()  # again after a cut-off: then it has nothing left to do

    def add(self, subscriber: S) -> S:
        """Register ``subscriber`` until ``remove``; ``subscribe`` does both for a block."""
        self.topics.setdefault(subscriber.topic, set()).add(subscriber)
        return subscriber

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
        self.deliveries.inc(len(subscribers) - len(full))
        for subscriber in full:
            self.cut_off(subscriber)

    def beat(self, control: Any, topic: str) -> None:
        """Hand a control frame (a heartbeat) to the topic's idle subscribers; never queued."""
        for subscriber in tuple(self.topics.get(topic, ())):
            subscriber.beat(control)

    def cut_off(self, subscriber: Subscriber) -> None:
        """Drop a subscriber that stopped reading, and close its socket with 1013.

        Its line is freed now, even while a send to its socket is blocked. The
        handler is not interrupted: its own next send raises ``SocketClosed``,
        and its receive ends with the disconnect, as for any closed socket.
        """
        self.remove(subscriber)
        subscriber.close()
        self.cut_offs.inc()
        subscriber.socket.end(TRY_AGAIN_LATER, "too slow: fell behind the broadcast")
