"""Credentials that can end, kept in this process: revocation, spent tickets.

A session cookie and a ticket each carry the time they were issued
(``<user>:<ms>``, ``identity.py``). ``revoke(user)`` records that nothing of
this user issued before now counts; ``not_before`` reads it back at every
handshake and call, and every ``QUART_SESSION_CHECK_SECONDS`` for open sockets.
A ticket that opened a socket is spent: one copied from a log or a proxy is
worth nothing.
"""

from __future__ import annotations

import time
from collections import deque


def now_ms() -> int:
    return int(time.time() * 1000)


class Sessions:
    """Per user, the time before which their sessions and tickets no longer count."""

    def __init__(self, keep_seconds: int, ticket_seconds: int) -> None:
        self.revoked: dict[str, int] = {}
        self.spent_tickets: set[str] = set()
        self.forget: deque[tuple[int, str]] = deque()  # (when it expires anyway, ticket)
        self.ticket_ms = (ticket_seconds + 2) * 1000  # ages are checked in whole seconds

    async def revoke(self, user: str) -> None:
        self.revoked[user] = now_ms()

    async def not_before(self, user: str) -> int:
        return self.revoked.get(user, 0)

    async def spend(self, ticket: str) -> bool:
        """Whether ``ticket`` was unspent; it is spent from now on."""
        now = now_ms()
        while self.forget and self.forget[0][0] < now:  # expired: refused anyway
            self.spent_tickets.discard(self.forget.popleft()[1])
        if ticket in self.spent_tickets:
            return False
        self.spent_tickets.add(ticket)
        self.forget.append((now + self.ticket_ms, ticket))
        return True

    async def spent(self, ticket: str) -> bool:
        return ticket in self.spent_tickets
