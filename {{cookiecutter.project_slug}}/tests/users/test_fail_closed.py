"""What an attacker, a typo and a closed tab try, against real server processes over TCP."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..helpers import connect
from ..servers import APP, PRODUCTION, PROJECT_ROOT, SERVERS, LiveServer, free_port, run_server
from .tickets import ticket_header

EVIL = "http://evil.example:8080"


Headers = dict[str, str]


def call(
    server: LiveServer, method: str, path: str, body: str = "", headers: Headers | None = None
) -> tuple[int, http.client.HTTPResponse, bytes]:
    """One HTTP request, redirects not followed: (status, response, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body.encode() or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response, response.read()
    finally:
        connection.close()


def log_in(server: LiveServer, name: str) -> str:
    """The demo login's session cookie for ``name``."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, response, _ = call(server, "POST", "/login", f"name={name}", form)
    assert status == 303
    return response.headers["Set-Cookie"].split(";")[0]


@pytest.fixture(params=SERVERS)
def demo_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    env = {"QUART_DEMO_LOGIN": "1", "QUART_SESSION_CHECK_SECONDS": "1"}
    with run_server(server=request.param, env=env) as server:
        yield server


async def test_logout_ends_the_session_everywhere_and_its_sockets_within_a_second(
    demo_server: LiveServer,
) -> None:
    cookie = log_in(demo_server, "mallory")
    url = demo_server.ws_url + "/ws/rooms/lobby"
    async with connect(url, additional_headers={"Cookie": cookie}) as socket:
        status, _, _ = call(demo_server, "POST", "/api/tickets", headers={"Cookie": cookie})
        assert status == 200  # the session works before the logout
        assert call(demo_server, "POST", "/logout", headers={"Cookie": cookie})[0] == 303
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(socket.recv(), 1.5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    # The saved cookie is worth nothing now: no socket, no ticket, no message.
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, additional_headers={"Cookie": cookie}).__aenter__()
    assert refused.value.response.status_code == 401
    assert call(demo_server, "POST", "/api/tickets", headers={"Cookie": cookie})[0] == 401
    post = call(demo_server, "POST", "/api/users/bob/messages", "hi", {"Cookie": cookie})
    assert post[0] == 401
    # A new login is a new session.
    fresh = log_in(demo_server, "mallory")
    async with connect(url, additional_headers={"Cookie": fresh}) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "presence"


async def test_a_state_change_with_the_cookie_from_another_origin_is_refused(
    demo_server: LiveServer,
) -> None:
    cookie = log_in(demo_server, "victim")
    foreign = {"Cookie": cookie, "Origin": EVIL}
    for path in ("/api/users/bob/messages", "/api/tickets", "/logout"):
        assert call(demo_server, "POST", path, "hi", foreign)[0] == 403, path
    own = {"Cookie": cookie, "Origin": demo_server.http_url}
    assert call(demo_server, "POST", "/api/users/bob/messages", "hi", own)[0] == 201
    assert call(demo_server, "POST", "/api/tickets", "", foreign | {"Origin": ""})[0] == 403


async def test_a_ticket_opens_one_socket_only(demo_server: LiveServer) -> None:
    header = ticket_header("alice")
    url = demo_server.ws_url + "/ws/inbox"
    async with connect(url, additional_headers=header):
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers=header).__aenter__()
        assert refused.value.response.status_code == 401
        async with connect(url, additional_headers=ticket_header("alice")) as again:
            await again.ping()  # a fresh ticket of the same user is let in


@pytest.mark.parametrize("name", [".", ".."])
async def test_dot_names_are_refused(demo_server: LiveServer, name: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(demo_server.ws_url + f"/ws/rooms/{name}").__aenter__()
    assert refused.value.response.status_code == 400
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert call(demo_server, "POST", "/login", f"name={name}", form)[0] == 400
    cookie = {"Cookie": log_in(demo_server, "alice")}
    assert call(demo_server, "POST", f"/api/users/{name}/messages", "hi", cookie)[0] == 400


@pytest.mark.parametrize("server", SERVERS)
async def test_anonymous_sockets_cannot_lock_users_out(server: str) -> None:
    env = {"QUART_MAX_CONNECTIONS": "6", "QUART_ANONYMOUS_CONNECTIONS": "3"}
    with run_server(server=server, env=env) as live:
        anonymous = [connect(live.ws_url + "/ws", additional_headers={}) for _ in range(3)]
        opened = [await client.__aenter__() for client in anonymous]
        try:
            with pytest.raises(InvalidStatus) as refused:
                await connect(live.ws_url + "/ws", additional_headers={}).__aenter__()
            assert refused.value.response.status_code == 503
            async with connect(live.ws_url + "/ws/inbox") as user:
                await user.ping()  # a user still gets in
        finally:
            for socket in opened:
                await socket.close()


@pytest.mark.parametrize("server", SERVERS)
async def test_no_member_receives_a_frame_over_the_limit_and_text_travels_as_utf8(
    server: str,
) -> None:
    with run_server(server=server, env={"QUART_MAX_MESSAGE_SIZE": "4096"}) as live:
        url = live.ws_url + "/ws/rooms/big"
        async with connect(url, max_size=4096) as member, connect(url) as sender:
            await asyncio.wait_for(member.recv(), 10)  # presence
            await sender.send("\x01" * 3000)  # 3000 bytes; 18000 as an escaped frame
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(sender.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
            async with connect(url) as writer:
                await writer.send("é" * 1000)  # 2000 bytes of UTF-8, one frame under 4096
                while (frame := json.loads(await asyncio.wait_for(member.recv(), 10)))[
                    "type"
                ] != "message":
                    pass
                assert frame["data"] == "é" * 1000  # the member was not cut off (1009)


@pytest.mark.parametrize("value", ["False", "no", "OFF", "0"])
async def test_a_false_demo_login_is_off(value: str) -> None:
    with run_server(env={"QUART_DEMO_LOGIN": value}) as live:
        assert call(live, "GET", "/login")[0] == 404
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert call(live, "POST", "/login", "name=x", form)[0] == 404  # log_in's request


def start_and_fail(env: dict[str, str]) -> str:
    """Start the production server with ``env``; it must exit: its output."""
    port = str(free_port())
    where = ["--port", port] if PRODUCTION == "uvicorn" else ["--bind", f"127.0.0.1:{port}", APP]
    done = subprocess.run([*SERVERS[PRODUCTION], *where], cwd=PROJECT_ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert done.returncode != 0
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"QUART_DEMO_LOGIN": "maybe"}, "QUART_DEMO_LOGIN"),
        ({"QUART_SECRET_KEY": "short"}, "QUART_SECRET_KEY"),
        ({"QUART_ANONYMOUS_CONNECTIONS": "5000"}, "QUART_ANONYMOUS_CONNECTIONS"),
    ],
)
def test_a_bad_setting_stops_the_app_with_its_name(env: dict[str, str], named: str) -> None:
    assert named in start_and_fail(env)


@pytest.mark.parametrize("server", SERVERS)
async def test_each_token_does_what_its_name_says_and_presence_is_for_members(
    server: str,
) -> None:
    env = {"QUART_BROADCAST_TOKEN": "b" * 32, "QUART_ANY_USER_TOKEN": "a" * 32}
    broadcaster = {"Authorization": "Bearer " + "b" * 32, "Content-Type": "application/json"}
    any_user = {"Authorization": "Bearer " + "a" * 32, "Content-Type": "application/json"}
    with run_server(server=server, env=env) as live:
        body = json.dumps({"user": "alice"})
        assert call(live, "POST", "/api/tickets", body, broadcaster)[0] == 401
        assert call(live, "DELETE", "/api/users/alice/connections", "", broadcaster)[0] == 401
        status, _, ticket = call(live, "POST", "/api/tickets", body, any_user)
        assert status == 200
        assert call(live, "POST", "/api/broadcast", "hi", broadcaster)[0] == 204
        assert call(live, "POST", "/api/broadcast", "hi", any_user)[0] == 401
        # Presence: the room's members and the any-user token, nobody else.
        alice = {"Authorization": "Bearer " + json.loads(ticket)["ticket"]}
        async with connect(live.ws_url + "/ws/rooms/secret", additional_headers=alice):
            assert call(live, "GET", "/api/rooms/secret/presence", "", any_user)[0] == 200
            outsider = {"Authorization": ticket_header("eve")["Authorization"]}
            assert call(live, "GET", "/api/rooms/secret/presence", "", outsider)[0] == 403
            member = ticket_header("alice")
            status, _, listed = call(live, "GET", "/api/rooms/secret/presence", "", member)
            assert status == 200 and json.loads(listed)["users"] == ["alice"]


QUOTA = {"QUART_USER_MESSAGES_PER_SECOND": "5", "QUART_USER_MESSAGE_BURST": "20"}


@pytest.mark.parametrize("server", SERVERS)
async def test_one_user_cannot_crowd_out_an_inbox_or_a_room(server: str) -> None:
    env = {**QUOTA, "QUART_USER_BYTES_PER_SECOND": "65536", "QUART_ANY_USER_TOKEN": "a" * 32}
    with run_server(server=server, env=env) as live:
        alice = ticket_header("alice")
        started = time.monotonic()
        statuses = [call(live, "POST", "/api/users/bob/messages", "hi", alice)[0]
                    for _ in range(100)]  # fmt: skip
        allowed = 20 + 5 * (time.monotonic() - started) + 1
        assert 20 <= statuses.count(201) <= allowed and statuses.count(429) > 0
        # Bob's inbox still holds all that was let through: nothing pushed out.
        # Another user is not held back by alice's quota.
        assert call(live, "POST", "/api/users/bob/messages", "hi", ticket_header("carol"))[0] == 201
        # Bytes too: a burst of one QUART_MAX_MESSAGE_SIZE (1 MiB), then 64 KiB a second.
        big = "x" * 400_000
        sizes = [call(live, "POST", f"/api/users/new{n}/messages", big, ticket_header("dave"))[0]
                 for n in range(5)]  # fmt: skip
        assert sizes[0] == 201 and 429 in sizes
        # On a room socket: past the quota the socket is closed with 1008.
        url = live.ws_url + "/ws/rooms/crowd"
        eve_ticket = ticket_header("eve")
        # The member reads none of the spam: with room for all of it, its client
        # still reads the close frame behind it (websockets pauses reading at 16).
        member_socket = connect(url, max_queue=1024)
        async with member_socket as member, connect(url, additional_headers=eve_ticket) as eve:
            await asyncio.wait_for(member.recv(), 10)  # presence
            with pytest.raises(ConnectionClosed) as closed:
                for number in range(100):
                    await eve.send(f"spam {number}")
                while True:
                    await asyncio.wait_for(eve.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert "from one user" in closed.value.rcvd.reason
