"""The memory broker: broadcasts reach the websockets of this process only.

Right for one process (``workers = 1``). Under several workers or hosts each
process has its own clients; regenerate with the redis backend for those.
"""

from __future__ import annotations

from quart import Quart

from .hub import Hub
from .messages import Message


class Broker:
    """Hands each broadcast straight to this process's hub."""

    name = "memory"

    def __init__(self, app: Quart, hub: Hub) -> None:
        self.hub = hub

    async def publish(self, message: Message) -> None:
        self.hub.deliver(message)

    def health(self) -> str:
        return "up"
