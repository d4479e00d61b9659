"""Message rate limits: per connection (past it a 1008 close), and per sender.

Every message a client sends to ``/ws/broadcast`` or a room is delivered to
every subscriber: without a limit one client could make the server send N
messages for each it sends, as fast as the server reads. ``SenderQuota``
bounds what one sender (a user, over all their sockets and HTTP posts on
this process) may publish: messages and bytes a second.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from quart import current_app, websocket

from ..messages import Message, incoming_messages
from ..metrics import current_metrics

POLICY_VIOLATION = 1008


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; each message takes one (or more).

    ``clock`` gives the time in seconds (tests pass their own).
    """

    __slots__ = ("burst", "clock", "rate", "tokens", "updated")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.updated = burst, clock()

    def take(self, tokens: float = 1) -> bool:
        if self.refill() < tokens:
            return False
        self.tokens -= tokens
        return True

    def refill(self) -> float:
        """The tokens now, after adding what the time since the last call earned."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return self.tokens


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


class OverQuota(Exception):
    """A sender who published more than their quota allows, for now."""


class SenderQuota:
    """Per sender: ``rate`` messages a second (``burst`` at once), and ``byte_rate`` bytes.

    A message of up to ``byte_burst`` bytes always fits a rested bucket.
    """

    def __init__(self, rate: float, burst: float, byte_rate: float, byte_burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.byte_rate, self.byte_burst = byte_rate, byte_burst
        self.senders: dict[str, tuple[TokenBucket, TokenBucket]] = {}

    def take(self, sender: str, size: int) -> None:
        """Count one message of ``size`` bytes from ``sender``; ``OverQuota`` past the quota."""
        buckets = self.senders.get(sender)
        if buckets is None:
            if len(self.senders) >= 10_000:  # forget the rested: a new bucket is as full
                self.senders = {name: pair for name, pair in self.senders.items() if busy(pair)}
            buckets = self.senders[sender] = (
                TokenBucket(self.rate, self.burst),
                TokenBucket(self.byte_rate, self.byte_burst),
            )
        messages, sizes = buckets
        if not messages.take():
            raise OverQuota(f"at most {self.rate:g} messages a second from one user")
        if not sizes.take(size):
            raise OverQuota(f"at most {self.byte_rate:g} bytes a second from one user")


def busy(pair: tuple[TokenBucket, TokenBucket]) -> bool:
    """Whether either bucket is still below full."""
    return any(bucket.refill() < bucket.burst for bucket in pair)
