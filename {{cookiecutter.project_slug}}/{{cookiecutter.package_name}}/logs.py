"""Logs that a flood of refused handshakes cannot fill: one line per cause a second.

uvicorn writes two lines for each handshake the app refuses (503, 401, ...):
"connection rejected" and, although the refusal is complete, "ASGI callable
returned without completing handshake." at ERROR. A thousand refusals would
be two thousand lines. ``OncePerSecond`` lets the first of each through per
second and counts the rest into the next one it lets through.
"""

from __future__ import annotations

import logging
import time

REPEATED = ("connection rejected", "ASGI callable returned without completing handshake")


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


def quiet_repeated_refusals() -> None:
    """Put ``SERVER_LOG`` on uvicorn's error log, once per process."""
    logger = logging.getLogger("uvicorn.error")
    if SERVER_LOG not in logger.filters:
        logger.addFilter(SERVER_LOG)
