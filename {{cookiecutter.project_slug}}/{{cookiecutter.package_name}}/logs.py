"""Logs that a flood of handshakes cannot fill: one line per cause a second.

uvicorn writes two lines for each handshake the app refuses (503, 401, ...):
"connection rejected" and, although the refusal is complete, "ASGI callable
returned without completing handshake." at ERROR. A thousand refusals would
be two thousand lines. It also writes "connection open" for every socket
(and "connection closed" for each it closes), beside the access line that
names its client: 18,000 sockets would be 36,000 lines. ``OncePerSecond``
lets the first of each through per second and counts the rest into the next
one it lets through.
"""

from __future__ import annotations

import logging
import time

REPEATED = (
    "connection rejected",
    "ASGI callable returned without completing handshake",
    "connection open",
    "connection closed",
)


class OncePerSecond(logging.Filter):
    """A filter: each line starting with one of ``prefixes`` at most once a second."""

    def __init__(self, prefixes: tuple[str, ...] = REPEATED) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.last: dict[str, float] = {}
        self.dropped: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        cause = next((prefix for prefix in self.prefixes if text.startswith(prefix)), None)
        if cause is None:
            return True
        now = time.monotonic()
        if now - self.last.get(cause, -1.0) < 1.0:
            self.dropped[cause] = self.dropped.get(cause, 0) + 1
            return False
        self.last[cause] = now
        if dropped := self.dropped.pop(cause, 0):
            record.msg, record.args = f"{text} (and {dropped} more in the last second)", ()
        return True


SERVER_LOG = OncePerSecond()


def quiet_repeated_lines() -> None:
    """Put ``SERVER_LOG`` on uvicorn's error log, once per process."""
    logger = logging.getLogger("uvicorn.error")
    if SERVER_LOG not in logger.filters:
        logger.addFilter(SERVER_LOG)
