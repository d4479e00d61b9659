"""A real redis-server on a free port of 127.0.0.1, for the redis backend's tests.

A pytest plugin (see ``conftest.py``): ``shared_redis`` serves every test of
the run, ``redis_server`` is a test's own, to stop and restart, and
``two_servers`` two app processes that share it. Without redis-server on
PATH, every test that builds or serves the app fails with ``INSTALL_HINT``
(its broker needs Redis) and the others run: a run without Redis is never
green.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ...servers import LiveServer, free_port, listens, run_server

INSTALL_HINT = "redis-server is not on PATH (Debian: apt-get install redis-server)"
TOKEN = "redis-test-token"  # the broadcast token of two_servers
# The fixtures that build or serve the app; a test module that imports
# ``run_server`` or ``wait_until_serving`` serves it too.
STARTS_THE_APP = {"make_app", "live_server", "redis_server", "two_servers", "redis_cluster",
                  "own_redis_cluster"}  # fmt: skip


def require_redis_server() -> str:
    """The binary's path; fail the test if it is missing: a run without Redis tests nothing."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return binary


def starts_the_app(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    module = getattr(item, "module", None)
    serves = hasattr(module, "run_server") or hasattr(module, "wait_until_serving")
    return bool(fixtures & STARTS_THE_APP) or serves


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test that needs Redis before its fixtures start anything."""
    if shutil.which("redis-server") is None and starts_the_app(item):
        pytest.fail(INSTALL_HINT, pytrace=False)


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """Start, stop and restart one redis-server process on a fixed port."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]  # nothing written to disk
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        # PONG from this process's own socket: another test's Redis may hold the port.
        while not (ping(self.port) and listens(self.process, self.port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A redis-server on a free port: another if a process beside this one took it first."""
    binary = require_redis_server()
    for attempt in range(1, 4):
        server = RedisServer(binary)
        try:
            try:
                server.start()
            except RuntimeError:
                if attempt == 3:
                    raise
                continue
            yield server
            return
        finally:
            server.stop()


@pytest.fixture(scope="session", autouse=True)
def shared_redis() -> Iterator[RedisServer | None]:
    """One redis-server for the run; apps and servers find it via QUART_REDIS_URL.

    Each pytest-xdist worker has its own QUART_REDIS_CHANNEL, the prefix of
    every channel and key: the tests of one never hear those of another.
    None without redis-server: the tests that need it fail in their setup.
    """
    if shutil.which("redis-server") is None:
        yield None
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with running_redis() as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUART_REDIS_URL", server.url)
        patch.setenv("QUART_REDIS_CHANNEL", f"tests-{worker}:broadcast")
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and restart."""
    with running_redis() as server:
        yield server


@pytest.fixture
def two_servers(redis_server: RedisServer) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes sharing ``redis_server``, with ``TOKEN`` to post."""
    env = {"QUART_REDIS_URL": redis_server.url, "QUART_BROADCAST_TOKEN": TOKEN}
    env["QUART_MESSAGES_PER_SECOND"] = "1000"  # the rooms' chatter sends 200 a second
    # Keep everything the chatter sends while a client is away: with the default
    # 100, a slow run overflows the history and the resume rightly says "missed".
    env["QUART_ROOM_HISTORY"] = "100000"
    with run_server(env=env) as first, run_server(env=env) as second:
        yield first, second
