"""Users across processes: real redis-server (or Cluster), two server processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ...broadcast.redis.redis_cluster import RedisCluster
from ...broadcast.redis.redis_server import TOKEN, RedisServer
from ...helpers import connect, wait_for
from ...servers import LiveServer, answers_healthz, run_server
from ..tickets import ticket_header

TTL = 3  # QUART_PRESENCE_TTL: a renewal every second


@pytest.fixture(params=["redis_server", "redis_cluster"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on one Redis, then on a Redis Cluster: the same routing."""
    redis: RedisServer | RedisCluster = request.getfixturevalue(request.param)
    env = {
        "QUART_REDIS_URL": redis.url,
        "QUART_BROADCAST_TOKEN": TOKEN,
        "QUART_ANY_USER_TOKEN": TOKEN,
        "QUART_PRESENCE_TTL": str(TTL),
    }
    with run_server(env=env) as first, run_server(env=env) as second:
        yield first, second


def call(server: LiveServer, method: str, path: str, body: bytes = b"") -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    request = urllib.request.Request(
        server.http_url + path, data=body or None, method=method, headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def as_user(user: str, url: str) -> Any:
    return connect(url, additional_headers=ticket_header(user))


async def frame(ws: ClientConnection) -> dict[str, Any]:
    while True:
        item: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if item["type"] != "heartbeat":
            return item


async def roster_until(ws: ClientConnection, roster: set[str], wanted: set[str]) -> None:
    """Apply presence frames to ``roster`` until it is ``wanted``."""
    while roster != wanted:
        item = await frame(ws)
        if item["type"] == "presence":
            roster.clear()
            roster.update(item["users"])
        elif item["type"] in ("join", "leave"):
            (roster.add if item["type"] == "join" else roster.discard)(item["user"])


async def test_users_of_two_processes_meet_talk_and_are_cut_off(
    servers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = servers
    room = "/ws/rooms/lobby"
    async with (
        as_user("alice", first.ws_url + room) as alice,
        as_user("alice", first.ws_url + "/ws/inbox") as alice_inbox,
        as_user("bob", second.ws_url + room) as bob,
        as_user("bob", second.ws_url + "/ws/inbox") as bob_inbox,
    ):
        alices, bobs = set[str](), set[str]()
        await roster_until(alice, alices, {"alice", "bob"})  # presence converges on both
        await roster_until(bob, bobs, {"alice", "bob"})
        answer = await asyncio.to_thread(call, second, "GET", "/api/rooms/lobby/presence")
        assert answer == {"room": "lobby", "users": ["alice", "bob"]}

        await alice.send('{"from": "bob"}')  # a text that claims another sender
        heard = await frame(bob)
        while heard["type"] != "message":
            heard = await frame(bob)
        assert (heard["from"], heard["data"]) == ("alice", '{"from": "bob"}')

        # Posted to the second process, for alice, whose inbox is on the first.
        await asyncio.to_thread(call, second, "POST", "/api/users/alice/messages", b"psst")
        direct = await frame(alice_inbox)
        assert (direct["room"], direct["from"], direct["data"]) == ("@alice", None, "psst")
        await asyncio.to_thread(call, first, "POST", "/api/users/bob/messages", b"marker")
        assert (await frame(bob_inbox))["data"] == "marker"  # nothing of alice's before it

        started = time.monotonic()
        await asyncio.to_thread(call, second, "DELETE", "/api/users/alice/connections")
        for ws in (alice, alice_inbox):
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        assert time.monotonic() - started < 1
        await roster_until(bob, bobs, {"bob"})
        await bob.send("bob is still here")
        heard = await frame(bob)
        while heard["type"] != "message":
            heard = await frame(bob)
        assert heard["data"] == "bob is still here"


async def test_the_users_of_a_killed_process_leave_within_the_ttl(
    servers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = servers
    room = "/ws/rooms/lobby"
    async with as_user("dave", second.ws_url + room) as dave:
        roster: set[str] = set()
        carol = await as_user("carol", first.ws_url + room)
        await roster_until(dave, roster, {"carol", "dave"})
        os.killpg(first.process.pid, signal.SIGKILL)  # no goodbye of any kind
        killed = time.monotonic()
        await asyncio.wait_for(roster_until(dave, roster, {"dave"}), TTL + 5)
        waited = time.monotonic() - killed
        assert waited <= TTL + TTL / 3 + 1, waited  # the TTL, one renewal, and slack
        await carol.close()


async def test_a_room_join_while_redis_is_down_is_refused_before_accept(
    redis_server: RedisServer,
) -> None:
    env = {"QUART_REDIS_URL": redis_server.url, "QUART_ANY_USER_TOKEN": TOKEN}
    with run_server(env=env) as server:
        room = server.ws_url + "/ws/rooms/lobby"
        redis_server.stop()
        # Presence needs Redis: a 503 that says so, not an accept then a 1011.
        with pytest.raises(InvalidStatus) as refused:
            async with as_user("erin", room):
                pass
        assert refused.value.response.status_code == 503
        error = json.loads(refused.value.response.body)["error"]
        assert error.startswith("Redis is unavailable: "), error
        redis_server.start()
        await wait_for(lambda: answers_healthz(server), within=15)  # subscribed again
        async with as_user("erin", room) as erin:  # the next join gets the room's list
            assert await frame(erin) == {"type": "presence", "room": "lobby", "users": ["erin"]}
