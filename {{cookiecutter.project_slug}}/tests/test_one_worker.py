"""The memory backend serves one process: a second worker refuses to start."""

from __future__ import annotations

import subprocess

from .servers import APP, PROJECT_ROOT, SERVERS, free_port


def test_hypercorn_with_two_workers_stops_and_names_the_fix() -> None:
    """Each worker would have its own clients, and a broadcast reach only some."""
    command = [*SERVERS["hypercorn"], "--workers", "2", "--bind", f"127.0.0.1:{free_port()}", APP]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    assert "the memory broadcast backend serves one process only" in result.stderr
    assert "broadcast_backend=redis" in result.stderr
