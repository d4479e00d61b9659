"""The generated Dockerfile, built and run for real with podman (``nox -s container``).

Needs podman with runc, podman-compose, and local images in ``BASE_IMAGE``
(python3), ``REDIS_IMAGE`` and ``NGINX_IMAGE``: the nox session builds them
with debootstrap, since no registry is reachable here.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .helpers import Render, free_port

pytestmark = pytest.mark.container
TOKEN = "container-token"
REPLICAS = ("quart-ws-compose-test_app_1", "quart-ws-compose-test_app_2")


def podman(
    *arguments: str, check: bool = True, timeout: float = 600, cwd: Path | None = None
) -> str:
    result = subprocess.run(
        ["podman", *arguments], capture_output=True, text=True, timeout=timeout, check=False,
        cwd=cwd,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(arguments)} failed:\n{result.stderr}")
    return result.stdout.strip()


def build(project: Path, tag: str) -> None:
    base = os.environ.get("BASE_IMAGE")
    assert base, "set BASE_IMAGE to a local Debian-based image with python3 and venv"
    podman("build", "--isolation=chroot", "--format", "docker",
           "--build-arg", f"PYTHON_IMAGE={base}", "-t", tag, str(project))  # fmt: skip
    size = int(podman("image", "inspect", tag, "--format", "{{.Size}}"))
    print(f"image {tag}: {size / 2**20:.0f} MiB (base {base})")


def wait_healthy(url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url}/healthz did not answer 200"
        time.sleep(0.3)


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def post(url: str, body: str, token: str = TOKEN) -> int:
    request = urllib.request.Request(
        f"{url}/api/broadcast", data=body.encode(), headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        status: int = response.status
        return status


@pytest.fixture(scope="module")
def default_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    output = tmp_path_factory.mktemp("render")
    subprocess.run(
        ["cookiecutter", "--no-input", "-o", str(output), str(Path(__file__).parent.parent)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (project,) = output.iterdir()
    tag = "localhost/quart-ws-app:container-test"
    build(project, tag)
    yield tag
    podman("rmi", "-f", tag, check=False)


@pytest.fixture
def container(default_image: str) -> Iterator[tuple[str, str]]:
    """The default image running, its port 8000 on a free port of 127.0.0.1."""
    port = free_port()
    name = f"quart-ws-test-{port}"
    podman("run", "-d", "--runtime", "runc", "--name", name, "-p", f"127.0.0.1:{port}:8000",
           "-e", f"QUART_BROADCAST_TOKEN={TOKEN}", default_image)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        yield name, url
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_the_container_serves_echo_and_broadcast_as_non_root(
    container: tuple[str, str],
) -> None:
    name, url = container
    ws_url = url.replace("http", "ws")

    async def check() -> None:
        async with connect(f"{ws_url}/ws") as echo:
            await echo.send("through the container")
            assert await echo.recv() == "through the container"
        # The app subscribes a broadcast socket before it accepts it: once
        # connect() returns, the listener is there for the POST.
        async with connect(f"{ws_url}/ws/broadcast") as listener:
            assert await asyncio.to_thread(post, url, "posted") == 204
            assert await asyncio.wait_for(listener.recv(), 10) == "posted"

    asyncio.run(check())
    assert podman("exec", name, "id", "-u") == "10001"  # not root
    assert podman("healthcheck", "run", name, check=False) in ("", "healthy")
    config = json.loads(podman("inspect", name))[0]["Config"]
    assert str(config["StopSignal"]) in ("SIGTERM", "15")
    assert config["Healthcheck"]["Test"][0] == "CMD"


def test_podman_stop_closes_websockets_with_1012(container: tuple[str, str]) -> None:
    """The default image serves with uvicorn, which closes its websockets with 1012 on SIGTERM."""
    name, url = container

    async def check() -> int | None:
        async with connect(url.replace("http", "ws") + "/ws") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            stopping = asyncio.create_task(asyncio.to_thread(podman, "stop", "-t", "10", name))
            try:
                await asyncio.wait_for(ws.recv(), 15)
            except ConnectionClosed as closed:
                await stopping
                return closed.rcvd.code if closed.rcvd else None
        return None

    assert asyncio.run(check()) == 1012  # service restart: the client reconnects


@pytest.fixture
def redis_server() -> Iterator[int]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed for the redis backend's image"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not answers_ping(port):
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


def test_two_replicas_of_the_redis_image_share_broadcasts(
    render: Render, redis_server: int
) -> None:
    """Two containers of the redis backend's image, one Redis: a broadcast crosses."""
    tag = "localhost/quart-ws-redis:container-test"
    build(render(broadcast_backend="redis"), tag)
    ports, names = [free_port(), free_port()], []
    try:
        for port in ports:
            names.append(f"quart-ws-redis-{port}")
            # The host's network: the replicas reach the Redis on its 127.0.0.1.
            podman("run", "-d", "--runtime", "runc", "--network", "host", "--name", names[-1],
                   "-e", f"QUART_REDIS_URL=redis://127.0.0.1:{redis_server}/0",
                   "-e", f"QUART_BROADCAST_TOKEN={TOKEN}", tag,
                   "hypercorn", "--config", "python:quart_ws_app.hypercorn_config",
                   "--worker-class", "uvloop",
                   "--bind", f"127.0.0.1:{port}",
                   "quart_ws_app:app")  # fmt: skip
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            wait_healthy(url)

        async def check() -> None:
            # Subscribed before accept; each replica's Redis subscription is up
            # once its /healthz answers 200.
            async with connect(urls[1].replace("http", "ws") + "/ws/broadcast") as listener:
                assert await asyncio.to_thread(post, urls[0], "from replica 1") == 204
                assert await asyncio.wait_for(listener.recv(), 10) == "from replica 1"

        asyncio.run(check())
    finally:
        for name in names:
            podman("rm", "-f", "-t", "0", name, check=False)
        podman("rmi", "-f", tag, check=False)


def readme_env_block(project: Path) -> str:
    """The README's shell lines that write ``.env`` (``{ echo ...; } > .env``)."""
    lines = (project / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{ echo QUART_"))
    end = next(i for i in range(start, len(lines)) if "> .env" in lines[i])
    return "\n".join(lines[start : end + 1])


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs}


@dataclass
class Stack:
    url: str
    token: str  # QUART_BROADCAST_TOKEN, as the README's block made it
    users: bool


COMPOSED = {"redis": {"broadcast_backend": "redis"},
            "users": {"broadcast_backend": "redis", "users": True}}  # fmt: skip


@pytest.fixture(params=COMPOSED)
def compose_stack(request: pytest.FixtureRequest, render: Render) -> Iterator[Stack]:
    """compose.yaml up with podman-compose (Redis, two apps, nginx).

    ``.env`` is what the README's own block writes, plus the local base image.
    """
    for variable in ("REDIS_IMAGE", "NGINX_IMAGE"):
        assert os.environ.get(variable), f"set {variable} to a local image"
    project = render(**COMPOSED[request.param])
    subprocess.run(["bash", "-c", readme_env_block(project)], cwd=project, check=True, timeout=30)
    with (project / ".env").open("a") as env:
        env.write(f"PYTHON_IMAGE={os.environ['BASE_IMAGE']}\n")
    token = read_env(project / ".env")["QUART_BROADCAST_TOKEN"]
    compose = ["podman-compose", "--project-name", "quart-ws-compose-test",
               "--podman-run-args=--runtime runc"]  # fmt: skip

    def run(*arguments: str) -> None:
        subprocess.run([*compose, *arguments], cwd=project, check=True, timeout=600,
                       capture_output=True)  # fmt: skip

    try:
        run("up", "-d", "--build", "--scale", "app=2")
        for replica in REPLICAS:  # podman here runs no healthcheck timers: run them
            deadline = time.monotonic() + 60
            while podman("healthcheck", "run", replica, check=False) not in ("", "healthy"):
                assert time.monotonic() < deadline, f"{replica} did not become healthy"
                time.sleep(0.5)
        wait_healthy("http://127.0.0.1:8000", within=30)
        yield Stack("http://127.0.0.1:8000", token, users=request.param == "users")
    finally:
        run("down", "-t", "1")
        # podman-compose's down leaves scaled replicas behind: remove its pod.
        podman("pod", "rm", "-f", "-t", "0", "--ignore", "pod_quart-ws-compose-test")
        assert not podman("ps", "-aq", "--filter", "name=quart-ws-compose-test")


def test_compose_spreads_clients_over_replicas_and_broadcasts_reach_all(
    compose_stack: Stack,
) -> None:
    url, token = compose_stack.url, compose_stack.token
    ws_url = url.replace("http", "ws")

    async def check() -> None:
        for _ in range(6):  # anyone may echo; the kernel and nginx spread the connections
            async with connect(f"{ws_url}/ws") as echo:
                await echo.send("through nginx")
                assert await echo.recv() == "through nginx"
        if compose_stack.users:  # a listener needs a user: without one, 401
            with pytest.raises(InvalidStatus) as refused:
                await connect(f"{ws_url}/ws/broadcast")
            assert refused.value.response.status_code == 401
            assert await asyncio.to_thread(post, url, "to every replica", token) == 204
            return
        clients = [await connect(f"{ws_url}/ws/broadcast") for _ in range(6)]  # subscribed first
        try:
            assert await asyncio.to_thread(post, url, "to every replica", token) == 204
            for ws in clients:
                assert await asyncio.wait_for(ws.recv(), 10) == "to every replica"
        finally:
            for ws in clients:
                await ws.close()

    asyncio.run(check())
    # uvicorn's access line of a websocket: '"WebSocket /ws" [accepted]'.
    served = {name: access_log(name).count("WebSocket /ws") for name in REPLICAS}
    print(f"websockets per replica: {served}")
    assert all(count > 0 for count in served.values()), served  # nginx spread them


def access_log(name: str) -> str:
    """A container's output, both streams: the server logs access to one of them."""
    result = subprocess.run(["podman", "logs", name], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr


# The renders whose README's `docker run` needs nothing but the image and `.env`
# (a redis render's names a Redis it cannot reach here: see the tests above),
# with the secrets their README writes to `.env`.
TOKEN_ONLY = {"QUART_BROADCAST_TOKEN"}
DOCKER_RUN = {
    "broadcast-off": ({"broadcast": False}, set()),
    "defaults": ({}, TOKEN_ONLY),
    "users": ({"users": True}, TOKEN_ONLY | {"QUART_SECRET_KEY"}),
}


def readme_container_block(project: Path) -> list[str]:
    """The shell lines of the README's "In a container" block, comments cut."""
    readme = (project / "README.md").read_text()
    block = readme.split("### In a container", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].rstrip() for line in block.splitlines()]


@pytest.mark.parametrize(("answers", "secrets"), DOCKER_RUN.values(), ids=DOCKER_RUN)
def test_the_readmes_docker_run_serves_the_render(
    render: Render, answers: dict[str, bool], secrets: set[str]
) -> None:
    """The README's own lines: ``.env``, ``docker build``, ``docker run`` (podman, a free port)."""
    project = render(**answers)
    if secrets:
        subprocess.run(["bash", "-e", "-c", readme_env_block(project)], cwd=project,
                       check=True, timeout=30)  # fmt: skip
    lines = readme_container_block(project)
    tag = shlex.split(next(line for line in lines if line.startswith("docker build ")))[3]
    run = shlex.split(next(line for line in lines if line.startswith("docker run ")))
    assert run[:4] == ["docker", "run", "-p", "8000:8000"] and run[-1] == tag, run
    # A render without secrets writes no .env and runs without one.
    assert any("> .env" in line for line in lines) == bool(secrets) == ("--env-file" in run)
    port = free_port()
    name = f"quart-ws-docker-run-{port}"
    build(project, tag)
    try:
        podman("run", "-d", "--runtime", "runc", "--name", name, "-p", f"127.0.0.1:{port}:8000",
               *run[4:], cwd=project)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        env = read_env(project / ".env") if secrets else {}
        assert set(env) == secrets

        async def check() -> None:
            async with connect(f"{url.replace('http', 'ws')}/ws") as echo:
                await echo.send("from the README's docker run")
                assert await echo.recv() == "from the README's docker run"
            if env:  # the token came from .env: the app read the file
                assert await asyncio.to_thread(post, url, "x", env["QUART_BROADCAST_TOKEN"]) == 204
                with pytest.raises(urllib.error.HTTPError) as refused:
                    await asyncio.to_thread(post, url, "x", "not-the-token")
                assert refused.value.code == 401

        asyncio.run(check())
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
        podman("rmi", "-f", tag, check=False)
