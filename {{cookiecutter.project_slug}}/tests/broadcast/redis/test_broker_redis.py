"""The redis broker in-process, against a real redis-server: history, gaps, outages."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

import pytest
from quart import Quart
from redis.asyncio import Redis

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.broadcast import broadcast, broker_redis
from {{ cookiecutter.package_name }}.broadcast.broker import BroadcastUnavailable
from {{ cookiecutter.package_name }}.broadcast.broker_redis import (
    RedisBroker,
    backoff,
    decode_room_message,
    room_payload,
)
from {{ cookiecutter.package_name }}.broadcast.hub import QueueSubscriber
from {{ cookiecutter.package_name }}.broadcast.rooms import message_key

from ...asgi_websocket import Refused, asgi_connect
from ...helpers import AppFactory, RecordingSocket, wait_for
from ..broadcasting import next_frame, subscriber_count
from .redis_server import TOKEN, RedisServer


def broker_of(app: Quart) -> RedisBroker:
    broker: RedisBroker = app.extensions["broker"]
    return broker


async def publish(app: Quart, room: str, *texts: str) -> list[str]:
    async with app.app_context():
        return [str(await broadcast(text, room=room)) for text in texts]


def test_a_room_message_crosses_the_channel_whatever_its_text() -> None:
    text = "  two words\nand a line\n\n"
    room, message = decode_room_message(room_payload("a.room", "1700000000000-3", text))
    assert room == "a.room"
    assert message.id == "1700000000000-3"
    assert json.loads(message.frame)["data"] == text


def test_reconnect_waits_double_up_to_the_cap_each_cut_by_at_most_half() -> None:
    expected = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    for _ in range(20):  # the jitter is random: every draw must stay in bounds
        waits = list(itertools.islice(backoff(first=0.1, cap=1.0), len(expected)))
        for wait, longest in zip(waits, expected, strict=True):
            assert longest / 2 <= wait <= longest


async def test_a_message_that_arrives_twice_is_delivered_once() -> None:
    app = create_app()  # not serving: deliver() needs no Redis
    broker = broker_of(app)
    subscriber = QueueSubscriber("room", RecordingSocket(), 10)
    with broker.hub.subscribe(subscriber):
        for message_id in ("5-0", "5-0", "4-0", "6-0"):  # live and gap fill may overlap
            broker.deliver(room_payload("room", message_id, message_id))
        delivered = [subscriber.queue.get_nowait().id for _ in range(subscriber.queue.qsize())]
    assert delivered == ["5-0", "6-0"]
    broker.deliver(room_payload("room", "7-0", "nobody is in the room now"))
    assert "room" not in broker.delivered  # a room nobody is in keeps no bookkeeping


async def test_a_broadcast_before_the_app_serves_is_unavailable() -> None:
    app = create_app()
    async with app.app_context():
        with pytest.raises(BroadcastUnavailable) as unavailable:
            await broadcast("too early")
    assert str(unavailable.value) == "the app is not serving: Redis is not connected"


async def test_a_resume_from_the_newest_trimmed_message_replays_the_rest_without_notice(
    make_app: AppFactory,
) -> None:
    app = await make_app(ROOM_HISTORY=2)
    first, *kept = await publish(app, "trimmed", "one", "two", "three")
    history = await broker_of(app).room_history("trimmed")
    assert history.dropped_through == message_key(first)
    assert [message.id for message in history.messages] == kept
    async with asgi_connect(app, f"/ws/rooms/trimmed?since={first}") as ws:
        frames = [await next_frame(ws.receive) for _ in kept]
    assert [(frame["type"], frame["room"], frame["id"]) for frame in frames] == [
        ("message", "trimmed", message_id) for message_id in kept
    ]


async def test_an_expired_message_is_reported_as_dropped(make_app: AppFactory) -> None:
    app = await make_app(ROOM_HISTORY_SECONDS=2)
    (old,) = await publish(app, "expiring", "old")
    await asyncio.sleep(1.2)
    (new,) = await publish(app, "expiring", "new")  # keeps the stream alive
    await asyncio.sleep(1.0)  # "old" is past the history's age, but not trimmed yet
    history = await broker_of(app).room_history("expiring")
    assert [message.id for message in history.messages] == [new]
    assert history.dropped_through == message_key(old)


async def test_a_lost_subscription_is_filled_from_the_room_history_in_order_once(
    make_app: AppFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = await make_app(REDIS_URL=redis_server.url)
    broker = broker_of(app)
    redis = Redis.from_url(redis_server.url)
    try:
        async with asgi_connect(app, "/ws/rooms/gap") as ws:
            await wait_for(lambda: subscriber_count(app, "gap") == 1)
            (before,) = await publish(app, "gap", "before")
            assert (await next_frame(ws.receive))["id"] == before
            with caplog.at_level(logging.INFO):
                for _ in range(2):  # the second loss tests that the backoff starts again
                    await redis.client_kill_filter(_type="pubsub")
                    # Published while this process is not subscribed: only the
                    # room's history has them.
                    texts = ["missed 1", "missed 2"]
                    missed = await publish(app, "gap", *texts)
                    frames = [await next_frame(ws.receive) for _ in missed]
                    assert [frame["id"] for frame in frames] == missed
                    assert [frame["data"] for frame in frames] == texts
                    await wait_for(lambda: broker.health() == "up")
            (after,) = await publish(app, "gap", "after")
            assert (await next_frame(ws.receive))["id"] == after  # nothing twice before it
    finally:
        await redis.aclose()
    lost = [r for r in caplog.records if r.getMessage().startswith("redis subscription lost (")]
    assert len(lost) == 2 and all(r.levelno == logging.WARNING for r in lost)
    assert all(isinstance(r.args, tuple) and isinstance(r.args[0], Exception) for r in lost)
    assert lost[0].getMessage().endswith(" s") and "retrying in 0." in lost[0].getMessage()
    channel = app.config["REDIS_CHANNEL"]
    subscribed = [
        r for r in caplog.records if r.getMessage() == f"subscribed to redis channel {channel}"
    ]
    assert len(subscribed) == 2


async def test_an_app_that_starts_before_redis_subscribes_once_it_is_up(
    redis_server: RedisServer,
) -> None:
    redis_server.stop()
    app = create_app({"REDIS_URL": redis_server.url})
    serving = app.test_app()
    await serving.startup()
    try:
        await asyncio.sleep(0.3)  # a few failed attempts
        assert broker_of(app).health() == "down"
        redis_server.start()
        await wait_for(lambda: broker_of(app).health() == "up", within=10)
    finally:
        await serving.shutdown()


async def test_health_follows_the_subscription_through_a_redis_restart(
    make_app: AppFactory, redis_server: RedisServer
) -> None:
    assert broker_of(create_app()).health() == "down"  # not serving: not subscribed
    app = await make_app(REDIS_URL=redis_server.url, BROADCAST_TOKEN=TOKEN)
    client = app.test_client()
    assert broker_of(app).health() == "up"
    redis_server.stop()
    await wait_for(lambda: broker_of(app).health() == "down")
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert (await response.get_json())["checks"] == {"redis": "down"}
    # Down: each way in says that Redis is unavailable, and nothing is lost silently.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/api/broadcast", "/api/rooms/lobby/messages"):
        response = await client.post(path, data="lost?", headers=headers)
        assert response.status_code == 503
        assert (await response.get_json())["error"].startswith("Redis is unavailable: ")
    async with asgi_connect(app, "/ws/rooms/lobby?since=1-0") as ws:
        with pytest.raises(Refused) as refused:
            await ws.receive()
    assert refused.value.status == 503
    assert json.loads(refused.value.body)["error"].startswith("Redis is unavailable: ")
    redis_server.start()
    await wait_for(lambda: broker_of(app).health() == "up", within=10)
    # The pooled connection went stale with the restart: the first publish still works.
    response = await client.post("/api/rooms/lobby/messages", data="back", headers=headers)
    assert response.status_code == 201


async def test_a_quiet_subscription_outlives_the_command_timeout(
    make_app: AppFactory,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # redis-py 8.0 applies socket_timeout to a blocking pub/sub read: a
    # channel quiet that long was "lost" and handshakes got 503 meanwhile.
    monkeypatch.setitem(broker_redis.CONNECTION_OPTIONS, "socket_timeout", 0.2)
    with caplog.at_level(logging.INFO):
        app = await make_app(REDIS_URL=redis_server.url)
        for _ in range(10):  # 1 s of silence: five command timeouts
            await asyncio.sleep(0.1)
            assert broker_of(app).health() == "up"
        async with asgi_connect(app, "/ws/rooms/quiet") as ws:
            await wait_for(lambda: subscriber_count(app, "quiet") == 1)
            await publish(app, "quiet", "still here")
            assert (await next_frame(ws.receive))["data"] == "still here"
    lost = [r for r in caplog.records if r.getMessage().startswith("redis subscription lost")]
    assert lost == []


async def test_an_app_that_stops_leaves_no_connection_to_redis(redis_server: RedisServer) -> None:
    redis = Redis.from_url(redis_server.url)

    async def others() -> int:
        return len(await redis.client_list()) - 1  # every client but this one

    try:
        app = create_app({"REDIS_URL": redis_server.url})
        serving = app.test_app()
        await serving.startup()
        await wait_for(lambda: broker_of(app).health() == "up")
        await publish(app, "lobby", "a publish opens a pooled connection")
        assert await others() == 2  # the subscription and the pool
        await serving.shutdown()
        for _ in range(100):  # the server notes a closed connection within moments
            if await others() == 0:
                break
            await asyncio.sleep(0.05)
        assert await others() == 0
    finally:
        await redis.aclose()


async def test_failed_publishes_are_logged_once_per_outage(
    make_app: AppFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = await make_app(REDIS_URL=redis_server.url)

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("redis commands fail (")]

    with caplog.at_level(logging.INFO):
        for outage in (1, 2):
            redis_server.stop()
            for _ in range(3):
                with pytest.raises(BroadcastUnavailable):
                    await publish(app, "lobby", "lost?")
            assert len(failures()) == outage  # once, not per publish
            redis_server.start()
            await wait_for(lambda: broker_of(app).health() == "up", within=10)
            await publish(app, "lobby", "back")
    assert all(r.levelno == logging.WARNING for r in failures())
    back = [r for r in caplog.records if r.getMessage() == "redis commands succeed again"]
    assert len(back) == 2


async def test_a_room_channel_is_left_a_grace_after_its_last_socket(
    make_app: AppFactory, redis_server: RedisServer
) -> None:
    app = await make_app(REDIS_URL=redis_server.url)
    subscriptions = broker_of(app).subscriptions
    channel = subscriptions.channel("quiet")
    redis = Redis.from_url(redis_server.url)

    async def subscribed() -> int:
        ((_, count),) = await redis.pubsub_shardnumsub(channel)
        return int(count)

    try:
        assert await subscribed() == 0  # nobody here yet: not subscribed
        async with asgi_connect(app, "/ws/rooms/quiet"):
            await wait_for(lambda: subscriber_count(app, "quiet") == 1)
            assert await subscribed() == 1
            await subscriptions.sweep()  # in use: kept
        await wait_for(lambda: subscriber_count(app, "quiet") == 0)
        await subscriptions.sweep()  # unused once: the grace
        async with asgi_connect(app, "/ws/rooms/quiet"):  # a reconnect within it
            await wait_for(lambda: subscriber_count(app, "quiet") == 1)
        await wait_for(lambda: subscriber_count(app, "quiet") == 0)
        await subscriptions.sweep()
        assert await subscribed() == 1  # the reconnect restarted the grace
        await subscriptions.sweep()  # unused at two sweeps in a row: left
        await wait_for(lambda: channel not in subscriptions.leaving)
        assert await subscribed() == 0
        assert await subscribed_to_broadcast(redis, app) == 1  # the broadcast channel stays
    finally:
        await redis.aclose()


async def subscribed_to_broadcast(redis: Redis, app: Quart) -> int:
    ((_, count),) = await redis.pubsub_shardnumsub(app.config["REDIS_CHANNEL"])
    return int(count)
