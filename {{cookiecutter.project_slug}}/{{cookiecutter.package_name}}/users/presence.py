"""Who is in each room, kept current for every room socket.

A room socket first gets the room's list, itself included, then a change
per user who arrives or goes (a user's first socket in the room, or last:
two tabs are one presence)::

    {"type": "presence", "room": "lobby", "users": ["alice", "bob"]}
    {"type": "join", "room": "lobby", "user": "carol"}
    {"type": "leave", "room": "lobby", "user": "bob"}

A change costs one small frame per socket of the room, never a full list.
The list lives in a store (``presence_{{ cookiecutter.broadcast_backend }}.py``){% if cookiecutter.broadcast_backend == "redis" %}: every process
refreshes its users' entries every third of ``QUART_PRESENCE_TTL`` seconds,
and the users of a process that died unannounced (``kill -9``) leave once
their entries are that old{% endif %}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from quart import Quart, current_app

from ..broadcast.broker import BroadcastUnavailable, Broker
from ..sockets import OpenSocket
from .identity import user_of

log = logging.getLogger(__name__)

LocalUsers = dict[str, Counter[str]]  # room -> user -> open sockets of this process


class PresenceStore(Protocol):
    """Where presence is kept: in this process (memory) or shared by all (redis)."""

    async def add(self, room: str, user: str) -> bool:
        """Count ``user`` in ``room``; True if they were not there before."""

    async def remove(self, room: str, user: str) -> bool:
        """Stop counting this process's ``user``; True if they are now gone."""

    async def users(self, room: str) -> list[str]:
        """Everyone in ``room``, sorted."""

    async def refresh(self, local: LocalUsers) -> list[tuple[str, str, str]]:
        """Keep this process's users current; return the changes found: (kind, room, user)."""


def presence_frame(room: str, users: list[str]) -> str:
    return json.dumps({"type": "presence", "room": room, "users": users}, ensure_ascii=False)


def change_frame(kind: str, room: str, user: str) -> str:
    return json.dumps({"type": kind, "room": room, "user": user}, ensure_ascii=False)


class Presence:
    """This process's room sockets per user, and the changes they make to the store."""

    def __init__(self, broker: Broker, store: PresenceStore, local: LocalUsers, ttl: int) -> None:
        self.broker = broker
        self.store = store
        self.local = local
        self.interval = ttl / 3
        self.task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def joined(self, room: str, sock: OpenSocket) -> AsyncIterator[list[str]]:
        """Count the socket's user in ``room`` for the block; give the presence frame."""
        user = user_of(sock)
        counts = self.local.setdefault(room, Counter())
        counts[user] += 1
        try:
            if counts[user] == 1 and await self.store.add(room, user):
                await self.broker.publish_notice(room, change_frame("join", room, user))
            yield [presence_frame(room, await self.store.users(room))]
        finally:
            counts[user] -= 1
            if not counts[user]:
                del counts[user]
                if not counts:
                    del self.local[room]
                await self.left(room, user)

    async def left(self, room: str, user: str) -> None:
        try:
            if await self.store.remove(room, user):
                await self.broker.publish_notice(room, change_frame("leave", room, user))
        except BroadcastUnavailable as error:
            # Its entry ages out of the store: the others see the leave then.
            log.warning("could not record that %s left %s: %s", user, room, error)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.keep_fresh())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                for kind, room, user in await self.store.refresh(self.local):
                    await self.broker.publish_notice(room, change_frame(kind, room, user))
            except BroadcastUnavailable as error:
                log.warning("presence not refreshed: %s", error)


def init_presence(app: Quart, broker: Broker, store: PresenceStore, local: LocalUsers) -> None:
    presence = Presence(broker, store, local, app.config["PRESENCE_TTL"])
    app.extensions["presence"] = presence
    app.before_serving(presence.start)
    app.after_serving(presence.stop)


def current_presence() -> Presence:
    presence: Presence = current_app.extensions["presence"]
    return presence
