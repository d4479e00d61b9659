"""Run the app as in production, for tests that need real sockets.

A pytest plugin (see ``conftest.py``): the ``live_server`` fixture, and
``run_server`` for tests that start and stop servers themselves.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri
{%- if cookiecutter.users %}

from .users.tickets import ticket_header
{%- endif %}

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP = "{{ cookiecutter.package_name }}:app"
# The production commands of this project, from its root: Hypercorn always works,
# with uvloop where it is installed (README.md, Deploy).
PRODUCTION = "{{ cookiecutter.server }}"
HYPERCORN_CONFIG = "python:{{ cookiecutter.package_name }}.hypercorn_config"
UVLOOP = ["--worker-class", "uvloop"] if importlib.util.find_spec("uvloop") else []
SERVERS = {
    "hypercorn": [sys.executable, "-m", "hypercorn", "--config", HYPERCORN_CONFIG, *UVLOOP],
{%- if cookiecutter.server == "uvicorn" %}
    "uvicorn": [sys.executable, "-m", "{{ cookiecutter.package_name }}"],
{%- endif %}
}


@contextmanager
def raw_websocket(url: str) -> Iterator[tuple[socket.socket, ClientProtocol]]:
    """A websocket over a plain socket, handshake done, for tests that misbehave.

    The sans-I/O protocol of ``websockets`` frames and parses; the test decides
    when to read and what to send, which a normal client never lets it do.
    """
    uri = parse_uri(url)
    protocol = ClientProtocol(uri, max_size=None)
    with socket.create_connection((uri.host, uri.port), timeout=10) as sock:
        request = protocol.connect()
{%- if cookiecutter.users %}
        request.headers.update(ticket_header())
{%- endif %}
        protocol.send_request(request)
        sock.sendall(b"".join(protocol.data_to_send()))
        while protocol.state is State.CONNECTING:
            chunk = sock.recv(4096)
            assert chunk, "server closed during the handshake"
            protocol.receive_data(chunk)
        assert protocol.state is State.OPEN, protocol.handshake_exc
        yield sock, protocol


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    name: str

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


METRICS_TOKEN = "test-metrics"  # run_server(metrics=True) turns /metrics on with it


def read_metrics(server: LiveServer) -> dict[str, float]:
    """The samples of the server's ``/metrics``, summed over their labels."""
    request = urllib.request.Request(
        f"{server.http_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    figures: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            name = name.split("{", 1)[0]
            figures[name] = figures.get(name, 0.0) + float(value)
    return figures


def answers_healthz(server: LiveServer) -> bool:
    """Whether the server answers ``GET /healthz`` with 200."""
    return healthz_status(server) == 200


def healthz_status(server: LiveServer) -> int | None:
    """The status of ``GET /healthz``; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:  # refused, or reset
        return None


class PortTaken(RuntimeError):
    """The server could not listen: another process took its free port first."""


def listens(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether ``process`` itself holds the socket listening on ``port``.

    A free port is free only until someone binds it: another test's server (an
    xdist worker, a nox session beside this one) may take it first, and its
    answers must not pass for this one's. Without ``/proc``, the answer counts.
    """
    try:
        return holds_socket(process.pid, tcp_sockets(port, LISTEN))
    except OSError:
        return True


LISTEN, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def tcp_sockets(local_port: int, state: str, remote_port: int | None = None) -> set[str]:
    """The IPv4 sockets on ``local_port`` in ``state``, as their fds read (Linux's /proc)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if (local, fields[3]) == (local_port, state) and remote_port in (None, remote):
            found.add(f"socket:[{fields[9]}]")
    return found


def holds_socket(pid: int, sockets: set[str]) -> bool:
    """Whether process ``pid`` has one of ``sockets`` open."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) in sockets:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def wait_until_serving(server: LiveServer, timeout: float = 20.0, expect: int = 200) -> None:
    """Wait until ``GET /healthz`` answers ``expect`` from this server's own socket.

    Fails if the server exits (``PortTaken`` if another process answers on its
    port) or never answers.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = healthz_status(server)
        if server.process.poll() is not None:
            failure = PortTaken if status is not None else RuntimeError
            raise failure(f"{server.name} exited with status {server.process.returncode}")
        if status == expect and listens(server.process, server.port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{server.name} did not answer on port {server.port} within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def run_server(
    *,
    server: str = PRODUCTION,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
    port: int | None = None,
    metrics: bool = False,
    log: IO[bytes] | None = None,
) -> Iterator[LiveServer]:
    """Serve the app from the project root as ``SERVERS[server]`` does in production.

    ``env`` adds environment variables, ``options`` command-line options;
    ``metrics`` turns ``/metrics`` on for ``read_metrics``; ``log`` takes its log.
    """
    env = {**(env or {}), **({"QUART_METRICS_TOKEN": METRICS_TOKEN} if metrics else {})}
    for attempt in range(1, 4):
        live = start_server(server, port or free_port(), env, options, log)
        try:
            try:
                wait_until_serving(live)
            except PortTaken:
                if port or attempt == 3:
                    raise
                continue  # on another free port
            yield live
            return
        finally:
            stop(live.process)


def start_server(
    server: str, port: int, env: dict[str, str], options: tuple[str, ...], log: IO[bytes] | None
) -> LiveServer:
    """Start ``server`` on ``port``; ``run_server`` waits for it and stops it."""
    if server == "hypercorn":
        # Hypercorn waits out its graceful timeout on every stop while the ping
        # task of a closed websocket sleeps (README.md, Which server): 1 s, not 5.
        arguments = ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "1", *options, APP]
    else:
        arguments = ["--host", "127.0.0.1", "--port", str(port), *options]
    process = subprocess.Popen(
        [*SERVERS[server], *arguments],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log,  # the server's log (both servers write it to stderr); None: the test's
        start_new_session=True,  # a process group of its own: see test_server.py
    )
    return LiveServer(process, port, server)


@pytest.fixture(params=SERVERS)
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """The app served as in production, by each server it has, on a free local port."""
    with run_server(server=request.param) as server:
        yield server
