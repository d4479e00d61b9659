"""The memory backend's guard: one worker process per server, or none starts.

Workers of Hypercorn (``workers = 2``) and uvicorn share a parent: the first
takes a lock file named after it, a second one finds it taken and refuses to
start, which stops the server with the reason. It runs only in a server's
worker processes, so the tests that start real servers check it
(``tests/broadcast/memory/test_one_worker.py``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
from pathlib import Path
from typing import IO


class WorkerLock:
    """Held by the one worker of its server (a ``before_serving`` hook), released after."""

    def __init__(self) -> None:
        self.lock: IO[bytes] | None = None

    async def claim(self) -> None:
        """Be the only worker of the server that started this process, or refuse to start."""
        if multiprocessing.parent_process() is None:
            return  # not a server's worker process: quart run, tests, one uvicorn process
        import fcntl  # POSIX only, as the servers' worker processes are here

        name = f"{__package__}-memory-broker-{os.getppid()}.lock"
        lock = (Path(tempfile.gettempdir()) / name).open("wb")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise RuntimeError(
                "the memory broadcast backend serves one process only, and this server "
                "starts several workers: each would reach only its own clients. Run one "
                "worker, or regenerate the project with broadcast_backend=redis."
            ) from None
        self.lock = lock

    async def release(self) -> None:
        """Remove the lock file: one per server start would pile up in the temp folder."""
        if self.lock is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock.name)
            self.lock.close()
            self.lock = None
