"""``python -m {{ cookiecutter.package_name }}``: the uvicorn launcher's ``--workers``."""

from __future__ import annotations

import os
import signal
{%- if cookiecutter.broadcast and cookiecutter.broadcast_backend == "memory" %}
import subprocess

from ..servers import PROJECT_ROOT, SERVERS


def test_several_workers_are_refused_with_the_memory_backend() -> None:
    """Each worker would have its own clients, and a broadcast reach only some."""
    process = subprocess.Popen(
        [*SERVERS["uvicorn"], "--workers", "2"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # if it serves after all, its workers go too
    )
    try:
        _, errors = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 2
    assert "--workers: the memory broadcast backend serves one process only" in errors
{%- else %}
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from ..helpers import wait_for
from ..servers import ESTABLISHED, LiveServer, holds_socket, run_server, tcp_sockets


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def workers_of(supervisor: int) -> list[int]:
    """The child processes of ``supervisor`` that run the app (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):  # not a process, or gone meanwhile
            continue
        if parent == supervisor and b"spawn_main" in command:  # not the resource tracker
            found.append(int(entry.name))
    return found


def worker_of(ws: ClientConnection, server: LiveServer, workers: list[int]) -> int:
    """The worker that holds the server's end of ``ws`` (Linux's /proc)."""
    ends = tcp_sockets(server.port, ESTABLISHED, remote_port=ws.local_address[1])
    return next(worker for worker in workers if holds_socket(worker, ends))


async def echoes(ws: ClientConnection) -> bool:
    await ws.send("ping")
    return await ws.recv() == "ping"  # pytest-timeout bounds the wait


async def test_two_workers_serve_and_stop_together() -> None:
    with run_server(server="uvicorn", options=("--workers", "2")) as server:
        await wait_for(lambda: len(workers_of(server.process.pid)) == 2, within=10)
        workers = workers_of(server.process.pid)
        async with connect(f"{server.ws_url}/ws") as first:
            assert await echoes(first)
            one = worker_of(first, server, workers)
            # With that worker paused, only the other can take a connection.
            os.kill(one, signal.SIGSTOP)
            try:
                async with connect(f"{server.ws_url}/ws", open_timeout=10) as second:
                    assert await echoes(second)
                    other = worker_of(second, server, workers)
            finally:
                os.kill(one, signal.SIGCONT)
            assert await echoes(first)
        assert sorted([one, other]) == sorted(workers)
        group = server.process.pid  # run_server gives the server a group of its own
    try:
        # SIGTERM to the supervisor alone stops its workers too.
        await wait_for(lambda: not group_alive(group), within=10)
    finally:
        if group_alive(group):
            os.killpg(group, signal.SIGKILL)
{%- endif %}
