"""An application heartbeat on room sockets.

Browsers cannot see websocket pings, so a page cannot tell a quiet room from a
dead connection (a sleeping laptop, a proxy that dropped it). Every
``QUART_PING_INTERVAL`` seconds each room's clients get a ``heartbeat`` frame;
``client.js`` reconnects when it hears nothing for much longer than that.
One task per process serves every room.

A heartbeat is a control frame, not a message: it has no id, is not counted
as a delivery, and never waits in a subscriber's line. A subscriber with
messages on their way gets none: those messages tell the client just as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

from .hub import EVERYONE, Hub


@dataclass(frozen=True, slots=True)
class Beat:
    """The heartbeat frame, a kind of its own beside ``rooms.RoomMessage``."""

    frame: str = json.dumps({"type": "heartbeat"})


BEAT = Beat()


class Heartbeat:
    """Queues a heartbeat frame for every room subscriber of this process, periodically."""

    def __init__(self, hub: Hub, interval: float) -> None:
        self.hub = hub
        self.interval = interval
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.beat())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for topic in list(self.hub.topics):
                if topic != EVERYONE:
                    self.hub.beat(BEAT, topic)
