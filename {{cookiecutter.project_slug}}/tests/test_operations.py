"""Operating it: metrics behind a token, a cap on open websockets, keepalive."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest
from quart import Quart
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from {{ cookiecutter.package_name }}.config import DEFAULTS

from .asgi_websocket import Refused, asgi_connect
from .helpers import METRICS_TOKEN, AppFactory, metric, sample, scrape
from .servers import HYPERCORN_CONFIG, PROJECT_ROOT, SERVERS, LiveServer, raw_websocket, run_server

TOKEN = METRICS_TOKEN


async def test_metrics_are_off_without_a_token(app: Quart) -> None:
    assert (await scrape(app))[0] == 404


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_metrics_need_the_bearer_token(make_app: AppFactory, token: str | None) -> None:
    app = await make_app(METRICS_TOKEN=TOKEN)
    assert (await scrape(app, token))[0] == 401


async def test_metrics_count_messages_and_open_websockets(make_app: AppFactory) -> None:
    app = await make_app(METRICS_TOKEN=TOKEN)
    received = 'websocket_messages_received_total{route="/ws"}'
    sent = 'websocket_messages_sent_total{route="/ws"}'
    is_open = 'websockets_open{route="/ws"}'
    status, before = await scrape(app)
    assert status == 200
    async with asgi_connect(app, "/ws") as ws:
        for _ in range(3):
            await ws.send("counted")
            await ws.receive()
        during = (await scrape(app))[1]
    await asyncio.sleep(0.05)  # the handler's teardown runs after the disconnect
    after = (await scrape(app))[1]
    assert sample(during, received) - sample(before, received) == 3
    assert sample(during, sent) - sample(before, sent) == 3
    assert sample(during, is_open) == sample(before, is_open) + 1
    assert sample(after, is_open) == sample(before, is_open)
    assert "process_open_fds" in after  # the process collector, on Linux
    assert sample(after, "asyncio_tasks") > 0


async def test_each_app_reports_its_own_websockets(make_app: AppFactory) -> None:
    first = await make_app(METRICS_TOKEN=TOKEN)
    last = await make_app(METRICS_TOKEN=TOKEN)  # built after: it must not take over the gauges
    async with asgi_connect(first, "/ws") as ws:
        await ws.send("in")
        assert await ws.receive() == "in"
        assert await metric(first, "websocket_connections") == 1
        assert await metric(first, 'websockets_open{route="/ws"}') == 1
        assert await metric(last, "websocket_connections") == 0
        assert await metric(last, 'websockets_open{route="/ws"}') == 0
        assert await metric(last, 'websocket_messages_received_total{route="/ws"}') == 0


async def test_the_cap_refuses_a_handshake_with_503_and_retry_after(
    make_app: AppFactory,
) -> None:
{%- if cookiecutter.users %}
    app = await make_app(MAX_CONNECTIONS=2, ANONYMOUS_CONNECTIONS=2, METRICS_TOKEN=TOKEN)
{%- else %}
    app = await make_app(MAX_CONNECTIONS=2, METRICS_TOKEN=TOKEN)
{%- endif %}
    refused = 'websocket_handshakes_refused_total{reason="cap"}'
    before = sample((await scrape(app))[1], refused)
    async with AsyncExitStack() as stack:
        for _ in range(2):
            ws = await stack.enter_async_context(asgi_connect(app, "/ws"))
            await ws.send("in")
            assert await ws.receive() == "in"
        async with asgi_connect(app, "/ws") as third:
            with pytest.raises(Refused) as refusal:
                await third.receive()
        assert refusal.value.status == 503
        assert int(refusal.value.headers["retry-after"]) > 0
    async with asgi_connect(app, "/ws") as ws:  # room again once the others left
        await ws.send("back")
        assert await ws.receive() == "back"
    assert sample((await scrape(app))[1], refused) == before + 1


@pytest.mark.parametrize("key", ["MAX_CONNECTIONS", "PING_INTERVAL", "PING_TIMEOUT"])
async def test_limits_must_be_positive(make_app: AppFactory, key: str) -> None:
    with pytest.raises(ValueError, match=f"QUART_{key}"):
        await make_app(**{key: 0})


async def test_every_bad_setting_is_named_at_start_up_one_per_line(make_app: AppFactory) -> None:
    with pytest.raises(ValueError) as error:
        await make_app(MAX_CONNECTIONS=0, PING_TIMEOUT="soon", MAX_MESSAGE_SIZE=True)
    assert str(error.value).splitlines() == [
        "QUART_MAX_MESSAGE_SIZE must be a positive integer, got True",
        "QUART_MAX_CONNECTIONS must be a positive integer, got 0",
        "QUART_PING_TIMEOUT must be a positive integer, got 'soon'",
    ]


def hypercorn_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the production Hypercorn config in a fresh process, as Hypercorn does."""
    script = (
        "import json; from hypercorn.config import Config;"
        f"config = Config.from_object({HYPERCORN_CONFIG.removeprefix('python:')!r});"
        "print(json.dumps([config.websocket_max_message_size,"
        " config.websocket_ping_interval, config.read_timeout]))"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hypercorn_takes_the_message_limit_and_keepalive_from_the_app_settings() -> None:
    defaults = hypercorn_settings({})
    assert json.loads(defaults.stdout) == [
        DEFAULTS["MAX_MESSAGE_SIZE"],
        DEFAULTS["PING_INTERVAL"],
        DEFAULTS["PING_INTERVAL"] + DEFAULTS["PING_TIMEOUT"],
    ]
    env = {"QUART_MAX_MESSAGE_SIZE": "4096", "QUART_PING_INTERVAL": "7", "QUART_PING_TIMEOUT": "3"}
    assert json.loads(hypercorn_settings(env).stdout) == [4096, 7, 10]


def test_hypercorn_does_not_start_with_a_bad_setting() -> None:
    loaded = hypercorn_settings({"QUART_PING_INTERVAL": "0"})
    assert loaded.returncode != 0
    assert "QUART_PING_INTERVAL must be a positive integer, got 0" in loaded.stderr


@pytest.fixture(params=SERVERS)
def fast_keepalive_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A server that pings every second and gives up on a silent peer after two."""
    # The same variables under every server: hypercorn_config.py derives Hypercorn's from them.
    env = {"QUART_PING_INTERVAL": "1", "QUART_PING_TIMEOUT": "1", "QUART_MAX_CONNECTIONS": "2"}
{%- if cookiecutter.users %}
    env["QUART_ANONYMOUS_CONNECTIONS"] = "2"  # all of them may be anonymous
{%- endif %}
    with run_server(server=request.param, env=env) as server:
        yield server


def silent_peer_lasts(url: str) -> float:
    """Open a websocket that never answers a ping; return how long the server keeps it."""
    with raw_websocket(url) as (sock, _):
        started = time.monotonic()
        sock.settimeout(10)
        try:
            while sock.recv(4096):
                pass  # pings, and maybe a close frame
        except (TimeoutError, ConnectionResetError):
            pass
        return time.monotonic() - started


async def test_a_peer_that_never_answers_pings_is_dropped(
    fast_keepalive_server: LiveServer,
) -> None:
    url = f"{fast_keepalive_server.ws_url}/ws"
    lasted = await asyncio.to_thread(silent_peer_lasts, url)
    assert lasted < 8  # ping interval + timeout, with room to spare; 10 s is the give-up


async def test_a_peer_that_answers_pings_stays(fast_keepalive_server: LiveServer) -> None:
    async with connect(f"{fast_keepalive_server.ws_url}/ws") as ws:  # answers pings itself
        await asyncio.sleep(4)
        await ws.send("still here")
        assert await ws.recv() == "still here"


async def test_the_cap_holds_under_a_real_server(fast_keepalive_server: LiveServer) -> None:
    url = f"{fast_keepalive_server.ws_url}/ws"
    async with connect(url), connect(url):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
    assert refused.value.response.status_code == 503
    assert refused.value.response.headers["Retry-After"]


@pytest.mark.parametrize("server", SERVERS)
async def test_a_flood_of_refused_handshakes_is_logged_once_a_second(server: str) -> None:
    env = {"QUART_MAX_CONNECTIONS": "1"}
{%- if cookiecutter.users %}
    env["QUART_ANONYMOUS_CONNECTIONS"] = "1"
{%- endif %}
    with tempfile.TemporaryFile() as log:
        with run_server(server=server, env=env, log=log) as live:
            async with connect(f"{live.ws_url}/ws"):
                started = time.monotonic()
                for _ in range(30):
                    with pytest.raises(InvalidStatus) as refused:
                        await connect(f"{live.ws_url}/ws").__aenter__()
                    assert refused.value.response.status_code == 503
                seconds = time.monotonic() - started
        log.seek(0)
        lines = log.read().decode(errors="replace").splitlines()
    errors = [line for line in lines if "ERROR" in line]
    assert len(errors) <= seconds + 2, errors  # at most one a second, not one per refusal
