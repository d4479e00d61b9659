"""The Redis presence store in process, against a real redis-server.

Two stores on one broker stand for two processes: each names itself in the
entries, and what one finds expired the other announces once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from quart import Quart

from {{ cookiecutter.package_name }}.broadcast.broker_redis import RedisBroker
from {{ cookiecutter.package_name }}.broadcast.redis_shards import tagged
from {{ cookiecutter.package_name }}.users.presence_redis import RedisPresenceStore, texts

from ...helpers import AppFactory

TTL = 1  # seconds: an entry not renewed for this long is expired


@pytest.fixture
def room() -> str:
    """A room of this test's own: the tests share one redis-server."""
    return f"room-{uuid.uuid4().hex[:8]}"


async def two_processes(make_app: AppFactory) -> tuple[RedisPresenceStore, RedisPresenceStore]:
    app: Quart = await make_app()
    broker: RedisBroker = app.extensions["broker"]
    return RedisPresenceStore(broker, TTL), RedisPresenceStore(broker, TTL)


async def alice_on_one_bob_on_two(
    make_app: AppFactory, room: str
) -> tuple[RedisPresenceStore, RedisPresenceStore]:
    """Two processes: alice's socket on the first, bob's on the second."""
    one, two = await two_processes(make_app)
    await one.add(room, "alice")
    await two.add(room, "bob")
    return one, two


async def entries(store: RedisPresenceStore, room: str) -> dict[str, list[str]]:
    """The room's hash as Redis holds it: user -> the processes that have them."""
    found = await store.broker.connected().hgetall(store.key(room))
    users = dict(zip(texts(found.keys()), texts(found.values()), strict=True))
    return {
        user: sorted(entry.split("=")[0] for entry in value.split(","))
        for user, value in users.items()
    }


async def test_a_user_joins_on_their_first_process_and_leaves_with_their_last(
    make_app: AppFactory, room: str
) -> None:
    one, two = await two_processes(make_app)
    assert await one.add(room, "alice") is True
    assert await two.add(room, "alice") is False  # already there, through the first
    assert await one.add(room, "alice") is False  # a second tab: one entry still
    assert await entries(one, room) == {"alice": sorted([one.process, two.process])}
    assert await one.users(room) == ["alice"]
    assert await one.remove(room, "alice") is False  # the second process has them
    assert await entries(one, room) == {"alice": [two.process]}
    assert await two.remove(room, "alice") is True
    assert await entries(one, room) == {}
    assert await one.remove(room, "alice") is False  # nobody to remove


async def test_users_are_sorted_per_room_and_the_hash_lives_on_the_rooms_shard(
    make_app: AppFactory, room: str
) -> None:
    one, two = await two_processes(make_app)
    for user in ("carol", "alice", "bob"):
        await one.add(room, user)
    await two.add(f"{room}-2", "dave")
    assert await two.users(room) == ["alice", "bob", "carol"]
    assert await one.users(f"{room}-2") == ["dave"]
    assert one.key(room) == tagged(one.broker.channel, "presence", room)
    # The hash outlives two missed renewals, then goes by itself.
    assert 0 < await one.broker.connected().pttl(one.key(room)) <= 2000 * TTL


async def test_an_entry_not_renewed_expires_and_one_survivor_announces_the_leave(
    make_app: AppFactory, room: str
) -> None:
    _, two = await alice_on_one_bob_on_two(make_app, room)
    # The first process dies now: no more renewals.
    await asyncio.sleep(TTL + 0.2)
    assert await two.users(room) == []  # expired: listed by nobody, even before the reap
    local = {room: Counter({"bob": 1})}
    assert await two.refresh(local) == [("leave", room, "alice")]
    assert await two.refresh(local) == []  # announced once
    assert await entries(two, room) == {"bob": [two.process]}
    assert await two.users(room) == ["bob"]  # renewed by the refresh


async def test_a_process_that_renews_in_time_keeps_its_users(
    make_app: AppFactory, room: str
) -> None:
    one, two = await alice_on_one_bob_on_two(make_app, room)
    for _ in range(5):  # 1.25 s: past the first entries' expiry
        await asyncio.sleep(TTL / 4)
        assert await one.refresh({room: Counter({"alice": 1})}) == []
        assert await two.refresh({room: Counter({"bob": 1})}) == []
    assert await two.users(room) == ["alice", "bob"]


async def test_a_process_reaped_while_it_stalled_rejoins_its_users(
    make_app: AppFactory, room: str
) -> None:
    one, two = await alice_on_one_bob_on_two(make_app, room)
    await asyncio.sleep(TTL + 0.2)  # the first process stalls past its entries' expiry
    local_two = {room: Counter({"bob": 1})}
    assert await two.refresh(local_two) == [("leave", room, "alice")]
    # Back, the first process still has alice's socket: she is announced again.
    assert await one.refresh({room: Counter({"alice": 2})}) == [("join", room, "alice")]
    assert await one.users(room) == ["alice", "bob"]
    assert await entries(one, room) == {"alice": [one.process], "bob": [two.process]}
