"""The memory backend serves one process: a second worker refuses to start."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from ...servers import APP, PROJECT_ROOT, SERVERS, free_port, run_server


def test_hypercorn_with_two_workers_stops_and_names_the_fix() -> None:
    """Each worker would have its own clients, and a broadcast reach only some."""
    command = [*SERVERS["hypercorn"], "--workers", "2", "--bind", f"127.0.0.1:{free_port()}", APP]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    assert "the memory broadcast backend serves one process only" in result.stderr
    assert "broadcast_backend=redis" in result.stderr


def test_the_worker_lock_leaves_no_file_behind() -> None:
    with run_server(server="hypercorn") as server:
        name = f"{{ cookiecutter.package_name }}.broadcast-memory-broker-{server.process.pid}.lock"
        lock = Path(tempfile.gettempdir()) / name
        assert lock.exists()  # held by Hypercorn's worker, named after Hypercorn
    assert not lock.exists()
