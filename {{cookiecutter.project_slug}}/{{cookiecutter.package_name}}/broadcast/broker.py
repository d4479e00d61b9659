"""What a broker does: the one interface both backends implement.

A broker carries messages between processes (or within one) and hands them
to this process's hub. This project's is ``broker_{{ cookiecutter.broadcast_backend }}.py``; the template
offers a memory backend (one process) and a redis one (every process and
host sharing a Redis).
"""

from __future__ import annotations

from typing import Protocol

from ..messages import Message
from .hub import Hub
from .rooms import RoomHistory


class BroadcastUnavailable(RuntimeError):
    """Raised by ``Broker.publish`` when the message could not be sent on."""


class Broker(Protocol):
    name: str
    hub: Hub

    async def follow(self, topic: str) -> None:
        """Return once what any process publishes to ``topic`` reaches this process's hub.

        Call it before subscribing a socket to the hub and reading history.
        """

    async def publish(self, message: Message) -> None:
        """Send ``message`` to every ``/ws/broadcast`` client of every process reached."""

    async def publish_to_room(self, room: str, text: str, sender: str | None = None) -> str:
        """Append ``text`` to the room's history, deliver it to the room; return its id."""

    async def publish_notice(self, topic: str, frame: str) -> None:
        """Deliver ``frame`` to the topic's sockets on every process reached, as a ``Notice``."""

    async def room_history(self, room: str) -> RoomHistory:
        """What the room still keeps, oldest first, for a client that resumes."""

    def health(self) -> str:
        """``"up"`` while messages flow, else ``"down"``."""
