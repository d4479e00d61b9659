"""Rooms across processes: real redis-server, two server processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.typing import Data

from ...helpers import connect, wait_for
from ...servers import LiveServer, answers_healthz
from ..broadcasting import next_frame
from .redis_server import TOKEN, RedisServer

ROOM = "lobby"


def post_to_room(server: LiveServer, text: str, room: str = ROOM) -> str:
    request = urllib.request.Request(
        f"{server.http_url}/api/rooms/{room}/messages",
        data=text.encode(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        message_id: str = json.load(response)["id"]
        return message_id


def receiving(ws: ClientConnection) -> Callable[[], Awaitable[Data]]:
    """``ws``'s next message, within 10 s."""
    return lambda: asyncio.wait_for(ws.recv(), 10)


async def frames_until(ws: ClientConnection, last_data: str) -> list[dict[str, Any]]:
    frames = [await next_frame(receiving(ws))]
    while frames[-1].get("data") != last_data:
        frames.append(await next_frame(receiving(ws)))
    return frames


async def keep_publishing(ws: ClientConnection, stop: asyncio.Event) -> int:
    """A third client that sends to the room throughout; return how many it sent."""
    sent = 0
    while not stop.is_set():
        await ws.send(f"chatter {sent}")
        sent += 1
        await asyncio.sleep(0.005)
    return sent


async def test_a_client_resumes_on_another_process_with_nothing_lost_or_doubled(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_servers
    url = f"/ws/rooms/{ROOM}"
    async with (
        connect(first.ws_url + url) as witness,  # sees every message of the room
        connect(second.ws_url + url) as chatter,
    ):
        stop = asyncio.Event()
        chatting = asyncio.create_task(keep_publishing(chatter, stop))
        async with connect(first.ws_url + url) as leaving:
            seen_before = [await next_frame(receiving(leaving)) for _ in range(10)]
        last_id = seen_before[-1]["id"]
        # Away: 50 messages posted to the other process, chatter going on.
        away = [f"away {n}" for n in range(50)]
        for text in away:
            await asyncio.to_thread(post_to_room, second, text)
        async with connect(f"{second.ws_url}{url}?since={last_id}") as back:
            await asyncio.sleep(0.3)  # live chatter after the replay, too
            stop.set()
            await chatting
            await asyncio.to_thread(post_to_room, second, "the end")
            seen_after = await frames_until(back, "the end")
        everything = await frames_until(witness, "the end")

    ids = [frame["id"] for frame in everything]
    start = ids.index(seen_before[0]["id"])
    resumed = seen_before + seen_after
    assert [frame["id"] for frame in resumed] == ids[start:]  # no gap, no double, in order
    assert all(frame["type"] == "message" for frame in resumed)
    data = [frame["data"] for frame in seen_after]
    assert [text for text in data if text.startswith("away")] == away
    assert any(text.startswith("chatter") for text in data[data.index("away 49") :])


async def test_after_a_redis_restart_a_resume_says_what_was_missed(
    redis_server: RedisServer, two_servers: tuple[LiveServer, LiveServer]
) -> None:
    first, second = two_servers
    url = f"/ws/rooms/{ROOM}"
    async with connect(first.ws_url + url) as staying:
        old_id = await asyncio.to_thread(post_to_room, second, "before the restart")
        assert (await next_frame(receiving(staying)))["id"] == old_id

        redis_server.stop()  # the history goes with it: nothing is saved to disk
        await wait_for(lambda: not answers_healthz(first), within=15)
        redis_server.start()
        await wait_for(lambda: answers_healthz(first) and answers_healthz(second), within=15)

        async with connect(f"{second.ws_url}{url}?since={old_id}") as resuming:
            assert await next_frame(receiving(resuming)) == {
                "type": "missed",
                "room": ROOM,
                "since": old_id,
            }
            new_id = await asyncio.to_thread(post_to_room, first, "after the restart")
            for ws in (resuming, staying):  # the old socket too: the subscription is back
                frame = await next_frame(receiving(ws))
                assert (frame["id"], frame["data"]) == (new_id, "after the restart")
