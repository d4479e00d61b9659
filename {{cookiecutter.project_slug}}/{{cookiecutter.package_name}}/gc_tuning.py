"""Fewer, shorter garbage-collector pauses while many websockets are open.

Each open websocket keeps a few hundred objects alive (Quart's context, tasks,
queues), so Python's full collections grow with the number of connections: a
pause that every client sees as latency. Collecting the youngest
generation less often lets the short-lived objects of each message die by
reference counting first, so far fewer reach the old generation and full
collections come much less often. The cost is a little more memory: young
garbage waits longer. (The template's benchmark measures both.)
"""

from __future__ import annotations

import gc

# CPython's defaults are (700, 10, 10).
THRESHOLDS = (10_000, 20, 20)


async def tune_gc() -> None:
    """Set the thresholds in the serving process (a ``before_serving`` hook)."""
    gc.set_threshold(*THRESHOLDS)
