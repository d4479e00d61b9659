"""An application heartbeat on room sockets.

Browsers cannot see websocket pings, so a page cannot tell a quiet room from a
dead connection (a sleeping laptop, a proxy that dropped it). Every
``QUART_PING_INTERVAL`` seconds each room's clients get a ``heartbeat`` frame;
``client.js`` reconnects when it hears nothing for much longer than that.
One task per process serves every room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from .hub import EVERYONE, Hub
from .rooms import RoomMessage

HEARTBEAT = RoomMessage("", (-1, -1), json.dumps({"type": "heartbeat"}))


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
                    self.hub.deliver(HEARTBEAT, topic)
