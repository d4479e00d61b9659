"""Credentials that can end, kept in Redis for every process: revocation, spent tickets.

A session cookie and a ticket each carry the time they were issued
(``<user>:<ms>``, ``identity.py``). ``revoke(user)`` records that nothing of
this user issued before now counts, in ``<channel>:revoked:{<user>}``, kept
as long as a session cookie lives; ``not_before`` reads it back at every
handshake and call, and every ``QUART_SESSION_CHECK_SECONDS`` for open sockets.
A ticket that opened a socket is spent (``<channel>:ticket:{<ticket>}``, kept
for the ticket's lifetime): one copied from a log or a proxy is worth nothing.
"""

from __future__ import annotations

import time

from ..broadcast.broker_redis import RedisBroker
from ..broadcast.redis_shards import tagged


def now_ms() -> int:
    return int(time.time() * 1000)


class Sessions:
    """Per user, the time before which their sessions and tickets no longer count."""

    def __init__(self, broker: RedisBroker, keep_seconds: int, ticket_seconds: int) -> None:
        self.broker = broker
        self.keep_ms = keep_seconds * 1000
        # A ticket's age is checked in whole seconds: kept a little longer.
        self.keep_spent_ms = (ticket_seconds + 2) * 1000

    def key(self, kind: str, name: str) -> str:
        return tagged(self.broker.channel, kind, name)

    async def revoke(self, user: str) -> None:
        async with self.broker.command() as redis:
            await redis.set(self.key("revoked", user), now_ms(), px=self.keep_ms)

    async def not_before(self, user: str) -> int:
        async with self.broker.command() as redis:
            value = await redis.get(self.key("revoked", user))
        return int(value or 0)

    async def spend(self, ticket: str) -> bool:
        """Whether ``ticket`` was unspent; it is spent from now on, on every process."""
        async with self.broker.command() as redis:
            fresh = await redis.set(self.key("ticket", ticket), 1, nx=True, px=self.keep_spent_ms)
        return bool(fresh)

    async def spent(self, ticket: str) -> bool:
        async with self.broker.command() as redis:
            return bool(await redis.exists(self.key("ticket", ticket)))
