"""A per-connection message rate limit: a token bucket, and past it a 1008 close.

Every message a client sends to ``/ws/broadcast`` or a room is delivered to
every subscriber: without a limit one client could make the server send N
messages for each it sends, as fast as the server reads.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from quart import current_app, websocket

from ..messages import Message, incoming_messages
from ..metrics import current_metrics

POLICY_VIOLATION = 1008


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; each message takes one.

    ``clock`` gives the time in seconds (tests pass their own).
    """

    __slots__ = ("burst", "clock", "rate", "tokens", "updated")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.updated = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def rate_limited_messages() -> AsyncIterator[Message]:
    """``incoming_messages()``, closed with 1008 once the client sends too fast."""
    rate = current_app.config["MESSAGES_PER_SECOND"]
    bucket = TokenBucket(rate, current_app.config["MESSAGE_BURST"])
    async for message in incoming_messages():
        if not bucket.take():
            current_metrics().closed.labels("flood").inc()
            await websocket.close(POLICY_VIOLATION, f"too many messages: at most {rate} a second")
            return
        yield message
