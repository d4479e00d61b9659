"""Rooms over a real Redis Cluster (3 masters, 3 replicas) and two server processes.

Also on one Redis: a process hears only the rooms it has sockets in.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest
from websockets.asyncio.client import ClientConnection

from {{ cookiecutter.package_name }}.broadcast import broadcast
from {{ cookiecutter.package_name }}.broadcast.redis_shards import tagged

from ...helpers import AppFactory, connect, wait_for
from ...servers import LiveServer, read_metrics, run_server
from ..broadcasting import next_frame
from .redis_cluster import RedisCluster, redis_cli
from .redis_server import TOKEN, RedisServer
from .test_rooms_redis import post_to_room, receiving

RECEIVED = "redis_messages_received_total"


def post(server: LiveServer, room: str, text: str) -> str:
    return post_to_room(server, text, room)


def two_processes(redis_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    env = {"QUART_REDIS_URL": redis_url, "QUART_BROADCAST_TOKEN": TOKEN}
    with (
        run_server(env=env, metrics=True) as first,
        run_server(env=env, metrics=True) as second,
    ):
        yield first, second


@pytest.fixture
def on_cluster(redis_cluster: RedisCluster) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes given one node of ``redis_cluster``: they find the rest."""
    yield from two_processes(redis_cluster.url)


@pytest.fixture
def on_own_cluster(own_redis_cluster: RedisCluster) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on a Redis Cluster of the test's own, to kill a node of."""
    yield from two_processes(own_redis_cluster.url)


@pytest.fixture(params=["redis_server", "redis_cluster"])
def anywhere(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on one Redis, then on a Redis Cluster."""
    redis: RedisServer | RedisCluster = request.getfixturevalue(request.param)
    yield from two_processes(redis.url)


async def nothing_more(sockets: list[ClientConnection]) -> None:
    """No socket receives anything else (heartbeats aside) for half a second."""

    async def quiet(ws: ClientConnection) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(next_frame(receiving(ws)), 0.5)

    await asyncio.gather(*(quiet(ws) for ws in sockets))


async def test_thirty_rooms_spread_over_the_masters_each_reaching_only_its_own(
    redis_cluster: RedisCluster, on_cluster: tuple[LiveServer, LiveServer]
) -> None:
    rooms = [f"room-{n}" for n in range(30)]
    async with AsyncExitStack() as stack:
        sockets = {
            room: [
                await stack.enter_async_context(connect(f"{server.ws_url}/ws/rooms/{room}"))
                for server in on_cluster
            ]
            for room in rooms
        }
        for number, room in enumerate(rooms):  # half posted to each process
            await asyncio.to_thread(post, on_cluster[number % 2], room, f"for {room}")
        for room, pair in sockets.items():
            for ws in pair:
                frame = await next_frame(receiving(ws))
                assert (frame["room"], frame["data"]) == (room, f"for {room}")
        await nothing_more([ws for pair in sockets.values() for ws in pair])
    # Each room's stream lives on the master of its slot, and all three carry some.
    masters = set()
    for room in rooms:
        stream = tagged(os.environ["QUART_REDIS_CHANNEL"], "room", room)
        master = redis_cluster.master_of(stream)
        assert redis_cli(master, "exists", stream).strip() == "1"
        masters.add(master)
    assert masters == set(redis_cluster.masters()) and len(masters) == 3


async def test_a_resume_on_the_other_process_replays_what_was_missed(
    on_cluster: tuple[LiveServer, LiveServer],
) -> None:
    first, second = on_cluster
    async with connect(f"{first.ws_url}/ws/rooms/resume") as leaving:
        seen = await asyncio.to_thread(post, second, "resume", "seen")
        assert (await next_frame(receiving(leaving)))["id"] == seen
    away = [await asyncio.to_thread(post, first, "resume", f"away {n}") for n in range(5)]
    async with connect(f"{second.ws_url}/ws/rooms/resume?since={seen}") as back:
        replayed = [await next_frame(receiving(back)) for _ in away]
        assert [frame["id"] for frame in replayed] == away
        live = await asyncio.to_thread(post, first, "resume", "live")
        assert (await next_frame(receiving(back)))["id"] == live


async def test_a_process_receives_from_redis_only_the_rooms_it_has_sockets_in(
    anywhere: tuple[LiveServer, LiveServer],
) -> None:
    first, second = anywhere
    rooms_a, rooms_b = [f"a-{n}" for n in range(5)], [f"b-{n}" for n in range(5)]
    async with AsyncExitStack() as stack:
        in_a = [
            await stack.enter_async_context(connect(f"{first.ws_url}/ws/rooms/{room}"))
            for room in rooms_a
        ]
        in_b = [
            await stack.enter_async_context(connect(f"{second.ws_url}/ws/rooms/{room}"))
            for room in rooms_b
        ]
        await asyncio.sleep(0.3)  # joins and presence settled
        before = [read_metrics(server)[RECEIVED] for server in anywhere]
        for room in rooms_a + rooms_b:
            for number in range(4):  # every room posted to through both processes
                await asyncio.to_thread(post, anywhere[number % 2], room, f"{room} {number}")
        for room, ws in zip(rooms_a + rooms_b, in_a + in_b, strict=True):
            frames = [await next_frame(receiving(ws)) for _ in range(4)]
            assert [frame["data"] for frame in frames] == [f"{room} {n}" for n in range(4)]
        after = [read_metrics(server)[RECEIVED] for server in anywhere]
    # 20 messages each for rooms A and B: each process got its own 20, none of the others.
    assert [now - then for now, then in zip(after, before, strict=True)] == [20, 20]


def post_when_back(server: LiveServer, room: str, text: str, within: float = 30) -> str:
    """Post until the cluster takes it again (503 while a failover runs)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return post(server, room, text)
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


async def test_after_a_master_is_killed_its_rooms_carry_messages_and_resumes_are_whole(
    own_redis_cluster: RedisCluster, on_own_cluster: tuple[LiveServer, LiveServer]
) -> None:
    cluster = own_redis_cluster
    first, second = on_own_cluster
    room = "failover"
    master = cluster.master_of(tagged(os.environ["QUART_REDIS_CHANNEL"], "room", room))
    async with connect(f"{first.ws_url}/ws/rooms/{room}") as staying:
        before = await asyncio.to_thread(post, second, room, "before")
        assert (await next_frame(receiving(staying)))["id"] == before
        # Killed once its replica has "before": what a replica has, the resume must give.
        cluster.wait_until(lambda: cluster.replicated(master))
        cluster.kill(master)  # kill -9
        await wait_for(cluster.failed_over, within=30)
        after = await asyncio.to_thread(post_when_back, second, room, "after")
        frame = await next_frame(receiving(staying))  # the subscription followed the slot
        assert (frame["id"], frame["data"]) == (after, "after")
        async with connect(f"{second.ws_url}/ws/rooms/{room}?since={before}") as resuming:
            assert (await next_frame(receiving(resuming)))["id"] == after


async def test_a_burst_of_publishes_waits_for_connections_rather_than_failing(
    redis_cluster: RedisCluster, make_app: AppFactory
) -> None:
    app = await make_app(REDIS_URL=redis_cluster.url)
    async with app.app_context():
        ids = await asyncio.gather(*(broadcast(f"{n}", room="burst") for n in range(300)))
    assert len(set(ids)) == 300  # redis-py alone refuses past 100 connections to a node


async def test_a_room_whose_slot_moves_to_another_master_keeps_its_sockets_and_history(
    redis_cluster: RedisCluster, on_cluster: tuple[LiveServer, LiveServer]
) -> None:
    first, second = on_cluster
    room = "moving"
    stream = tagged(os.environ["QUART_REDIS_CHANNEL"], "room", room)
    async with connect(f"{first.ws_url}/ws/rooms/{room}") as staying:
        before = await asyncio.to_thread(post, second, room, "before")
        assert (await next_frame(receiving(staying)))["id"] == before
        source = redis_cluster.master_of(stream)
        target = next(port for port in redis_cluster.masters() if port != source)
        redis_cluster.move_slot_of(stream, target)  # Redis unsubscribes the room's channel
        after = await asyncio.to_thread(post_when_back, second, room, "after")
        frame = await next_frame(receiving(staying))
        assert (frame["id"], frame["data"]) == (after, "after")
    async with connect(f"{second.ws_url}/ws/rooms/{room}?since={before}") as resuming:
        assert (await next_frame(receiving(resuming)))["id"] == after  # the stream moved too
