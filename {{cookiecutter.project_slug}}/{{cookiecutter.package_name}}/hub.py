"""The local fan-out: one bounded queue per broadcast websocket of this process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from .messages import Message


class BroadcastUnavailable(RuntimeError):
    """Raised by ``Broker.publish`` when the message could not be sent on."""


class Subscriber:
    """One connection's queue, and the task to interrupt if it falls behind."""

    __slots__ = ("overflowed", "queue", "task")

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue(queue_size)
        self.task = asyncio.current_task()
        self.overflowed = False


class Hub:
    """Delivers each message to every subscriber without ever waiting on one."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()

    @contextmanager
    def subscribe(self) -> Iterator[Subscriber]:
        """Register a subscriber for the block; it is removed however the block ends."""
        subscriber = Subscriber(self.queue_size)
        self.subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self.subscribers.discard(subscriber)

    def deliver(self, message: Message) -> None:
        """Queue ``message`` for everyone; cut off those whose queue is full."""
        full = []
        # No await in this loop, so no subscriber can come or go while it runs.
        for subscriber in self.subscribers:
            try:
                subscriber.queue.put_nowait(message)
            except asyncio.QueueFull:
                full.append(subscriber)
        for subscriber in full:
            self.cut_off(subscriber)

    def cut_off(self, subscriber: Subscriber) -> None:
        """Drop a subscriber that stopped reading and interrupt its handler.

        Cancelling the task frees its queue now, even while a send to its
        socket is blocked; its handler then closes the socket with 1013.
        """
        self.subscribers.discard(subscriber)
        subscriber.overflowed = True
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        if subscriber.task is not None:
            subscriber.task.cancel()
