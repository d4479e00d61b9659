"""Helpers of the broadcast tests: who is subscribed, and room frames without heartbeats."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart

from {{ cookiecutter.package_name }}.broadcast.hub import EVERYONE, Hub

PRESENCE: set[str] = {{ '{"presence", "join", "leave"}' if cookiecutter.users else "set()" }}
SKIPPED = {"heartbeat", *PRESENCE}


def subscriber_count(app: Quart, topic: str = EVERYONE) -> int:
    """Websockets of ``app`` subscribed to ``topic`` (a room's name, or the broadcast)."""
    hub: Hub = app.extensions["broker"].hub
    return hub.subscriber_count(topic)


async def next_frame(
    receive: Callable[[], Awaitable[Any]], skipped: set[str] = SKIPPED
) -> dict[str, Any]:
    """The next room frame that ``receive`` gets, heartbeats{% if cookiecutter.users %} and presence{% endif %} skipped."""
    while True:
        frame: dict[str, Any] = json.loads(await receive())
        if frame["type"] not in skipped:
            return frame


def pending_frames(ws: Any, skipped: set[str] = SKIPPED) -> list[dict[str, Any]]:
    """The room frames an in-process socket has received but not read, ``skipped`` aside.

    With users, a socket's own ``join`` may come after the first messages.
    """
    frames = []
    while not ws.from_app.empty():
        event = ws.from_app.get_nowait()
        frame = json.loads(event.get("text") or "{}")
        if frame.get("type") not in skipped:
            frames.append(frame)
    return frames
