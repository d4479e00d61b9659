"""The memory broker: broadcasts reach the websockets of this process only.

Right for one process (``workers = 1``). Under several workers each process
would have its own clients and a broadcast would reach only some of them, so
a second worker of the same server refuses to start, and the server stops
with it. For several workers or hosts, regenerate with the redis backend.
Room histories live in this process and are gone when it restarts: a client
that resumes afterwards is told that it missed messages.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import IO

from quart import Quart

from ..messages import Message
from .hub import EVERYONE, Hub
from .rooms import MessageKey, RoomHistory, RoomMessage


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
        self.worker_lock: IO[bytes] | None = None
        app.before_serving(self.claim_the_server)
        app.after_serving(self.release_the_server)

    async def claim_the_server(self) -> None:
        """Be the only worker of the server that started this process, or refuse to start.

        Workers of Hypercorn (``workers = 2``) and uvicorn share a parent: the
        first takes a lock named after it, a second one finds it taken.
        """
        if multiprocessing.parent_process() is None:
            return  # not a server's worker process: quart run, tests, one uvicorn process
        import fcntl  # POSIX only, as the servers' worker processes are here

        name = f"{__package__}-memory-broker-{os.getppid()}.lock"
        lock = (Path(tempfile.gettempdir()) / name).open("wb")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise RuntimeError(
                "the memory broadcast backend serves one process only, and this server "
                "starts several workers: each would reach only its own clients. Run one "
                "worker, or regenerate the project with broadcast_backend=redis."
            ) from None
        self.worker_lock = lock

    async def release_the_server(self) -> None:
        """Remove the lock file: one per server start would pile up in the temp folder."""
        if self.worker_lock is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.worker_lock.name)
            self.worker_lock.close()
            self.worker_lock = None

    async def publish(self, message: Message) -> None:
        self.hub.deliver(message, EVERYONE)

    async def publish_to_room(self, room: str, text: str) -> str:
        now = int(time.time() * 1000)
        millis, sequence = self.last_key.get(room, (0, -1))
        key = (now, 0) if now > millis else (millis, sequence + 1)  # as Redis numbers them
        message = RoomMessage.create(room, f"{key[0]}-{key[1]}", text)
        self.expire_rooms()
        history = self.rooms.setdefault(room, BoundedHistory())
        history.append(message)
        history.trim(self.max_count, self.max_bytes, now - self.max_age_ms)
        self.last_key[room] = key
        self.hub.deliver(message, room)
        return message.id

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
