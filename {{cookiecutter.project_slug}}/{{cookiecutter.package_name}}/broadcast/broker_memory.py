"""The memory broker: broadcasts reach the websockets of this process only.

Right for one process (``workers = 1``). Under several workers each process
would have its own clients and a broadcast would reach only some of them, so
a second worker of the same server refuses to start (``worker_lock.py``), and
the server stops with it. For several workers or hosts, regenerate with the
redis backend.
Room histories live in this process and are gone when it restarts: a client
that resumes afterwards is told that it missed messages.
"""

from __future__ import annotations

import time
from collections import deque

from quart import Quart

from ..messages import Message
from .hub import EVERYONE, Hub
from .rooms import MessageKey, Notice, RoomHistory, RoomMessage
from .worker_lock import WorkerLock


class BoundedHistory:
    """One room's last messages, bounded in count, bytes and age."""

    def __init__(self) -> None:
        self.messages: deque[RoomMessage] = deque()
        self.size = 0
        self.dropped_through: MessageKey | None = None

    def append(self, message: RoomMessage) -> None:
        self.messages.append(message)
        self.size += len(message.frame)

    def trim(self, max_count: int, max_bytes: int, oldest: int) -> None:
        """Drop from the front until every bound holds; the newest stays until it expires."""
        while self.messages:
            expired = self.messages[0].key[0] < oldest
            if not expired and (
                len(self.messages) == 1
                or (len(self.messages) <= max_count and self.size <= max_bytes)
            ):
                return
            self.drop_oldest()

    def drop_oldest(self) -> None:
        dropped = self.messages.popleft()
        self.size -= len(dropped.frame)
        self.dropped_through = dropped.key


class MemoryBroker:
    """Hands each message straight to this process's hub."""

    name = "memory"

    def __init__(self, app: Quart, hub: Hub) -> None:
        self.hub = hub
        self.max_count: int = app.config["ROOM_HISTORY"]
        self.max_age_ms: int = 1000 * app.config["ROOM_HISTORY_SECONDS"]
        self.max_bytes: int = app.config["ROOM_HISTORY_BYTES"]
        self.rooms: dict[str, BoundedHistory] = {}
        self.last_key: dict[str, MessageKey] = {}
        self.next_expiry = 0.0
        lock = WorkerLock()
        app.before_serving(lock.claim)
        app.after_serving(lock.release)

    async def follow(self, topic: str) -> None:
        """Every topic's messages are this process's own: nothing to wait for."""

    async def publish(self, message: Message) -> None:
        self.hub.deliver(message, EVERYONE)

    async def publish_to_room(self, room: str, text: str, sender: str | None = None) -> str:
        now = int(time.time() * 1000)
        millis, sequence = self.last_key.get(room, (0, -1))
        key = (now, 0) if now > millis else (millis, sequence + 1)  # as Redis numbers them
        message = RoomMessage.create(room, f"{key[0]}-{key[1]}", text, sender)
        self.expire_rooms()
        history = self.rooms.setdefault(room, BoundedHistory())
        history.append(message)
        history.trim(self.max_count, self.max_bytes, now - self.max_age_ms)
        self.last_key[room] = key
        self.hub.deliver(message, room)
        return message.id

    async def publish_notice(self, topic: str, frame: str) -> None:
        self.hub.deliver(Notice(frame), topic)

    async def room_history(self, room: str) -> RoomHistory:
        history = self.rooms.get(room)
        if history is None:
            return RoomHistory()
        history.trim(self.max_count, self.max_bytes, int(time.time() * 1000) - self.max_age_ms)
        return RoomHistory(list(history.messages), history.dropped_through)

    def expire_rooms(self) -> None:
        """Forget rooms whose newest message has expired: idle rooms cost nothing."""
        if time.monotonic() < self.next_expiry:
            return  # at most once a second: the scan visits every room
        self.next_expiry = time.monotonic() + 1
        oldest = int(time.time() * 1000) - self.max_age_ms
        for room in [room for room, key in self.last_key.items() if key[0] < oldest]:
            self.rooms.pop(room, None)
            del self.last_key[room]

    def health(self) -> str:
        return "up"
