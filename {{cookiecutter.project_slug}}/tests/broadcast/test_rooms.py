"""Rooms: delivery within a room only, ids, history, and resuming with ``since``."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack

import pytest
from quart import Quart

from {{ cookiecutter.package_name }}.broadcast import broadcast
from {{ cookiecutter.package_name }}.broadcast.rooms import (
    BadResume,
    RoomHistory,
    RoomMessage,
    check_room_name,
    message_key,
    replay_after,
)

from ..asgi_websocket import Closed, Refused, asgi_connect
from ..helpers import AppFactory, wait_for
from .broadcasting import PRESENCE, next_frame, pending_frames, subscriber_count

TOKEN = "room-token"


async def publish(app: Quart, room: str, *texts: str) -> list[str]:
    """Publish ``texts`` to ``room`` as a background task would; return their ids."""
    async with app.app_context():
        return [str(await broadcast(text, room=room)) for text in texts]


@pytest.fixture
async def app(make_app: AppFactory) -> Quart:
    return await make_app(BROADCAST_TOKEN=TOKEN, ROOM_HISTORY=20)


async def test_a_message_reaches_its_room_and_no_other(app: Quart) -> None:
    async with (
        asgi_connect(app, "/ws/rooms/lobby") as alice,
        asgi_connect(app, "/ws/rooms/lobby") as bob,
        asgi_connect(app, "/ws/rooms/kitchen") as carol,
    ):
        await wait_for(
            lambda: subscriber_count(app, "lobby") == 2 and subscriber_count(app, "kitchen") == 1
        )
        await alice.send("hello lobby")
        for ws in (alice, bob):
            frame = await next_frame(ws.receive)
            assert frame["type"] == "message"
            assert frame["room"] == "lobby"
            assert frame["data"] == "hello lobby"
        await carol.send("hello kitchen")
        assert (await next_frame(carol.receive))["data"] == "hello kitchen"
        await alice.send("second")
        assert (await next_frame(bob.receive))["data"] == "second"  # not the kitchen's


async def test_ids_order_the_messages_of_a_room(app: Quart) -> None:
    async with asgi_connect(app, "/ws/rooms/ordered") as ws:
        await wait_for(lambda: subscriber_count(app, "ordered") == 1)
        ids = await publish(app, "ordered", *(str(n) for n in range(30)))
        frames = [await next_frame(ws.receive) for _ in range(30)]
    assert [frame["data"] for frame in frames] == [str(n) for n in range(30)]
    assert [frame["id"] for frame in frames] == ids
    keys = [tuple(map(int, message_id.split("-"))) for message_id in ids]
    assert keys == sorted(keys) and len(set(keys)) == 30


async def test_a_hundred_rooms_stay_apart(app: Quart) -> None:
    rooms = [f"room-{n}" for n in range(100)]
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(asgi_connect(app, f"/ws/rooms/{room}"))
                   for room in rooms]  # fmt: skip
        await wait_for(lambda: all(subscriber_count(app, room) == 1 for room in rooms))
        for room in rooms:
            await publish(app, room, f"for {room}")
        for room, ws in zip(rooms, clients, strict=True):
            frame = await next_frame(ws.receive)
            assert (frame["room"], frame["data"]) == (room, f"for {room}")
        assert not any(pending_frames(ws) for ws in clients)  # and nothing else


async def test_resume_replays_what_was_missed_then_live(app: Quart) -> None:
    ids = await publish(app, "resume", *(f"m{n}" for n in range(10)))
    async with asgi_connect(app, f"/ws/rooms/resume?since={ids[3]}") as ws:
        replayed = [await next_frame(ws.receive) for _ in range(6)]
        assert [frame["data"] for frame in replayed] == [f"m{n}" for n in range(4, 10)]
        await publish(app, "resume", "live")
        assert (await next_frame(ws.receive))["data"] == "live"


async def test_resume_from_the_newest_id_replays_nothing(app: Quart) -> None:
    ids = await publish(app, "uptodate", "a", "b")
    async with asgi_connect(app, f"/ws/rooms/uptodate?since={ids[-1]}") as ws:
        await wait_for(lambda: subscriber_count(app, "uptodate") == 1)
        await publish(app, "uptodate", "c")
        assert (await next_frame(ws.receive))["data"] == "c"


async def test_a_resume_past_the_history_starts_with_a_missed_notice(app: Quart) -> None:
    ids = await publish(app, "long-gone", *(f"m{n}" for n in range(30)))  # history keeps 20
    async with asgi_connect(app, f"/ws/rooms/long-gone?since={ids[0]}") as ws:
        notice = await next_frame(ws.receive)
        assert notice == {"type": "missed", "room": "long-gone", "since": ids[0]}
        rest = [await next_frame(ws.receive) for _ in range(20)]
    assert [frame["data"] for frame in rest] == [f"m{n}" for n in range(10, 30)]


async def test_an_expired_history_gives_a_missed_notice(make_app: AppFactory) -> None:
    app = await make_app(ROOM_HISTORY_SECONDS=1)
    ids = await publish(app, "expiring", "seen", "missed")
    await asyncio.sleep(1.2)
    async with asgi_connect(app, f"/ws/rooms/expiring?since={ids[0]}") as ws:
        assert await next_frame(ws.receive) == {
            "type": "missed",
            "room": "expiring",
            "since": ids[0],
        }
        await publish(app, "expiring", "live")
        assert (await next_frame(ws.receive))["data"] == "live"


@pytest.mark.parametrize("room", ["a" * 65, "a b", "ünï", "semi;colon", "a%2Fb", ".", ".."])
async def test_a_bad_room_name_is_refused_before_accept(app: Quart, room: str) -> None:
    async with asgi_connect(app, f"/ws/rooms/{room}") as ws:
        with pytest.raises(Refused) as refused:
            await ws.receive()
    assert refused.value.status == 400
    assert "a room name is" in json.loads(refused.value.body)["error"]


@pytest.mark.parametrize(
    ("since", "reason"),
    [("banana", "not a message id"), ("1-x", "not a message id"), ("99999999999999-0", "newer")],
)
async def test_a_bad_since_is_refused_before_accept(app: Quart, since: str, reason: str) -> None:
    await publish(app, "strict", "one")
    async with asgi_connect(app, f"/ws/rooms/strict?since={since}") as ws:
        with pytest.raises(Refused) as refused:
            await ws.receive()
    assert refused.value.status == 400
    assert reason in json.loads(refused.value.body)["error"]


async def test_an_unknown_since_inside_the_history_is_refused(app: Quart) -> None:
    (first,) = await publish(app, "known", "a")
    await asyncio.sleep(0.01)  # the next id gets a later millisecond
    await publish(app, "known", "b")
    millis, sequence = first.split("-")
    unknown = f"{millis}-{int(sequence) + 5}"  # between the two, never issued
    async with asgi_connect(app, f"/ws/rooms/known?since={unknown}") as ws:
        with pytest.raises(Refused) as refused:
            await ws.receive()
    assert refused.value.status == 400
    assert "not a message of this room" in json.loads(refused.value.body)["error"]


async def test_binary_frames_close_a_room_socket_with_1003(app: Quart) -> None:
    async with asgi_connect(app, "/ws/rooms/text-only") as ws:
        await ws.send(b"\x00")
        with pytest.raises(Closed) as closed:
            await next_frame(ws.receive)
    assert closed.value.code == 1003


async def test_post_publishes_to_one_room(app: Quart) -> None:
    client = app.test_client()
    async with asgi_connect(app, "/ws/rooms/news") as ws:
        await wait_for(lambda: subscriber_count(app, "news") == 1)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = await client.post("/api/rooms/news/messages", data="posted", headers=headers)
        assert response.status_code == 201
        body = await response.get_json()
        frame = await next_frame(ws.receive)
        expected = {"type": "message", "room": "news", "id": body["id"], "data": "posted"}
        assert frame == {**expected, "from": None}  # the server's own message


@pytest.mark.parametrize(
    ("path", "headers", "data", "status"),
    [
        ("/api/rooms/news/messages", {}, "x", 401),
        ("/api/rooms/news/messages", {"Authorization": "Bearer wrong"}, "x", 401),
        ("/api/rooms/bad%20name/messages", {"Authorization": f"Bearer {TOKEN}"}, "x", 400),
        ("/api/rooms/news/messages", {"Authorization": f"Bearer {TOKEN}"}, b"\xff", 400),
    ],
    ids=["no-token", "wrong-token", "bad-room", "not-utf8"],
)
async def test_post_refuses_bad_requests(
    app: Quart, path: str, headers: dict[str, str], data: str | bytes, status: int
) -> None:
    response = await app.test_client().post(path, data=data, headers=headers)
    assert response.status_code == status


async def test_a_message_over_the_limit_closes_only_that_room_client(
    make_app: AppFactory,
) -> None:
    app = await make_app(MAX_MESSAGE_SIZE=300)  # a frame adds some 150 bytes to its text
    async with asgi_connect(app, "/ws/rooms/big") as big, asgi_connect(app, "/ws/rooms/big") as ok:
        await wait_for(lambda: subscriber_count(app, "big") == 2)
        await big.send("x" * 301)
        with pytest.raises(Closed) as closed:
            await next_frame(big.receive)
        assert closed.value.code == 1009
        await ok.send("fine")
        assert (await next_frame(ok.receive))["data"] == "fine"


async def test_room_sockets_get_a_heartbeat(make_app: AppFactory) -> None:
    app = await make_app(PING_INTERVAL=1)
    async with asgi_connect(app, "/ws/rooms/quiet") as ws:
        frame = await next_frame(ws.receive, skipped=PRESENCE)  # within the 5 s timeout
        assert frame == {"type": "heartbeat"}


def history_of(*ids: str, dropped_through: str | None = None) -> RoomHistory:
    messages = [RoomMessage.create("r", message_id, "x", None) for message_id in ids]
    dropped = message_key(dropped_through) if dropped_through else None
    return RoomHistory(messages, dropped)


def ids(replayed: tuple[list[RoomMessage], bool]) -> tuple[list[str], bool]:
    return [message.id for message in replayed[0]], replayed[1]


@pytest.mark.parametrize(
    ("history", "since", "expected"),
    [
        (history_of("5-0", "6-0"), "5-0", (["6-0"], False)),  # a kept message
        (history_of("5-0", "6-0"), "6-0", ([], False)),  # the newest: nothing to replay
        (history_of("6-0", dropped_through="5-0"), "5-0", (["6-0"], False)),  # the last dropped
        (history_of("6-0", dropped_through="5-0"), "4-9", (["6-0"], True)),  # before it: lost
        (history_of("6-0"), "5-0", (["6-0"], True)),  # older than all kept (expired)
        (history_of(), "5-0", ([], True)),  # nothing kept at all (a store restart)
    ],
)
def test_a_resume_replays_what_follows_and_says_whether_some_was_lost(
    history: RoomHistory, since: str, expected: tuple[list[str], bool]
) -> None:
    assert ids(replay_after(history, since)) == expected


@pytest.mark.parametrize(
    ("since", "reason"),
    [("7-0", "is newer than the newest message"), ("5-1", "is not a message of this room")],
)
def test_a_resume_from_an_id_never_issued_is_refused(since: str, reason: str) -> None:
    with pytest.raises(BadResume, match=reason):
        replay_after(history_of("5-0", "6-0"), since)


def test_a_bad_room_name_is_told_the_rule() -> None:
    assert check_room_name("a" * 65) == (
        "a room name is 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not . or .."
    )
    assert check_room_name("Lobby_1.a-b") is None
    assert check_room_name(".") == check_room_name("..") == check_room_name("a" * 65)
    assert check_room_name("...") is None
