"""Users in one process: handshakes, senders, inboxes, presence, cutting off."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest
from quart import Quart

from {{ cookiecutter.package_name }}.users import disconnect_user, send_to_user
from {{ cookiecutter.package_name }}.users.identity import Tickets

from ..asgi_websocket import AsgiWebsocket, Closed, Refused, asgi_connect
from ..broadcast.broadcasting import next_frame, subscriber_count
from ..helpers import AppFactory, metric, wait_for
from .tickets import TEST_SECRET_KEY, ticket_header

TOKEN = "server-token"
SERVER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def app(make_app: AppFactory) -> Quart:
    return await make_app(
        BROADCAST_TOKEN=TOKEN, ANY_USER_TOKEN=TOKEN, METRICS_TOKEN="metrics-token"
    )


async def frame(ws: AsgiWebsocket) -> dict[str, Any]:
    """The next frame, presence included (heartbeats skipped)."""
    return await next_frame(ws.receive, skipped={"heartbeat"})


async def refusal(app: Quart, path: str, headers: dict[str, str]) -> Refused:
    with pytest.raises(Refused) as refused:
        async with asgi_connect(app, path, headers) as ws:
            await ws.receive()
    return refused.value


def expired_ticket(user: str) -> str:
    tickets = Tickets(TEST_SECRET_KEY, 60)
    tickets.signer.get_timestamp = lambda: int(time.time()) - 61  # type: ignore[method-assign]
    return tickets.issue(user)


@pytest.mark.parametrize("path", ["/ws/broadcast", "/ws/rooms/lobby", "/ws/inbox"])
@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no_credential"),
        ({"Authorization": "Bearer alice.AAAAAA.forged"}, "bad_ticket"),
        (ticket_header("alice", key="another-key-" + "x" * 32), "bad_ticket"),
        ({"Authorization": f"Bearer {expired_ticket('alice')}"}, "expired_ticket"),
    ],
    ids=["none", "tampered", "other-key", "expired"],
)
async def test_a_handshake_without_a_good_credential_is_refused_with_401(
    app: Quart, path: str, headers: dict[str, str], reason: str
) -> None:
    refused = await refusal(app, path, headers)
    assert refused.status == 401
    assert json.loads(refused.body)["error"]
    sample = "websocket_handshakes_refused_total" + '{reason="' + reason + '"}'
    assert await metric(app, sample) == 1


async def test_a_tampered_ticket_naming_another_user_is_refused(app: Quart) -> None:
    ticket = ticket_header("alice")["Authorization"].removeprefix("Bearer ")
    forged = "mallory" + ticket.removeprefix("alice")
    assert (await refusal(app, "/ws/inbox", {"Authorization": f"Bearer {forged}"})).status == 401


async def test_the_echo_socket_needs_no_user(app: Quart) -> None:
    async with asgi_connect(app, "/ws", {}) as ws:
        await ws.send("hi")
        assert await ws.receive() == "hi"


async def test_room_frames_say_who_sent_them_whatever_the_text_claims(app: Quart) -> None:
    async with (
        asgi_connect(app, "/ws/rooms/lobby", ticket_header("alice")) as alice,
        asgi_connect(app, "/ws/rooms/lobby", ticket_header("bob")) as bob,
    ):
        await wait_for(lambda: subscriber_count(app, "lobby") == 2)
        await alice.send('{"from": "bob", "data": "it was bob"}')
        message = await next_frame(bob.receive)
        assert message["from"] == "alice"
        assert message["data"] == '{"from": "bob", "data": "it was bob"}'


async def test_presence_lists_the_room_then_tells_who_comes_and_goes(app: Quart) -> None:
    async with asgi_connect(app, "/ws/rooms/lobby", ticket_header("alice")) as alice:
        assert await frame(alice) == {"type": "presence", "room": "lobby", "users": ["alice"]}
        roster = {"alice"}
        async with asgi_connect(app, "/ws/rooms/lobby", ticket_header("bob")) as bob:
            first = await frame(bob)
            assert first == {"type": "presence", "room": "lobby", "users": ["alice", "bob"]}
            seen = await roster_until(alice, roster, {"alice", "bob"})
            assert seen[-1] == {"type": "join", "room": "lobby", "user": "bob"}
            # A second tab of bob's is no news, and closing it is none either.
            async with asgi_connect(app, "/ws/rooms/lobby", ticket_header("bob")) as tab:
                assert (await frame(tab))["users"] == ["alice", "bob"]
            response = await app.test_client().get("/api/rooms/lobby/presence", headers=SERVER)
            assert await response.get_json() == {"room": "lobby", "users": ["alice", "bob"]}
            news = await frames_until_posted(app, alice, "lobby")
            assert [item for item in news if item["type"] in ("join", "leave")] == []
        seen = await roster_until(alice, roster, {"alice"})
        assert seen[-1] == {"type": "leave", "room": "lobby", "user": "bob"}
        assert await metric(app, "users_connected") == 1


async def roster_until(
    ws: AsgiWebsocket, roster: set[str], wanted: set[str]
) -> list[dict[str, Any]]:
    """Apply presence frames to ``roster`` until it is ``wanted``; return the frames.

    Frames set state (a join of someone present changes nothing): with Redis,
    a join announced just before this socket subscribed may still arrive.
    """
    seen = []
    while roster != wanted:
        seen.append(item := await frame(ws))
        if item["type"] == "presence":
            roster.clear()
            roster.update(item["users"])
        elif item["type"] == "join":
            roster.add(item["user"])
        elif item["type"] == "leave":
            roster.discard(item["user"])
    return seen


async def frames_until_posted(app: Quart, ws: AsgiWebsocket, room: str) -> list[dict[str, Any]]:
    """Post a marker to ``room``; the frames ``ws`` gets up to it."""
    client = app.test_client()
    await client.post(f"/api/rooms/{room}/messages", data="marker", headers=SERVER)
    seen = [await frame(ws)]
    while seen[-1].get("data") != "marker":
        seen.append(await frame(ws))
    return seen


async def test_a_direct_message_reaches_every_inbox_of_its_user_and_nobody_else(
    app: Quart,
) -> None:
    async with (
        asgi_connect(app, "/ws/inbox", ticket_header("bob")) as bob,
        asgi_connect(app, "/ws/inbox", ticket_header("bob")) as bobs_phone,
        asgi_connect(app, "/ws/inbox", ticket_header("carol")) as carol,
    ):
        await wait_for(lambda: subscriber_count(app, "@bob") == 2)
        client = app.test_client()
        headers = ticket_header("alice")
        response = await client.post("/api/users/bob/messages", data="psst", headers=headers)
        assert response.status_code == 201
        sent = await response.get_json()
        for inbox in (bob, bobs_phone):
            message = await next_frame(inbox.receive)
            assert message == {
                "type": "message", "room": "@bob", "id": sent["id"], "from": "alice", "data": "psst"
            }  # fmt: skip
        async with app.app_context():
            message_id = await send_to_user("carol", "from the server")
        assert await next_frame(carol.receive) == {
            "type": "message", "room": "@carol", "id": message_id, "from": None,
            "data": "from the server",
        }  # fmt: skip
    assert await metric(app, "direct_messages_total") == 2


async def test_an_inbox_resumes_with_since(app: Quart) -> None:
    client = app.test_client()
    ids = []
    for text in ("one", "two", "three"):
        response = await client.post("/api/users/dana/messages", data=text, headers=SERVER)
        ids.append((await response.get_json())["id"])
    async with asgi_connect(app, f"/ws/inbox?since={ids[0]}", ticket_header("dana")) as dana:
        assert [(await next_frame(dana.receive))["data"] for _ in range(2)] == ["two", "three"]


async def test_the_inbox_refuses_what_a_client_sends(app: Quart) -> None:
    async with asgi_connect(app, "/ws/inbox", ticket_header("erin")) as erin:
        await erin.send("hello?")
        with pytest.raises(Closed) as closed:
            await erin.receive()
    assert closed.value.code == 1003
    assert closed.value.reason == "the inbox only receives: POST to send"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/api/users/bob/messages", {}, 401),
        ("POST", "/api/users/bad%20id/messages", SERVER, 400),
        ("DELETE", "/api/users/bob/connections", ticket_header("bob"), 401),
        ("GET", "/api/rooms/lobby/presence", {}, 401),
        ("POST", "/api/tickets", ticket_header("bob"), 401),  # a ticket makes no more
    ],
)
async def test_the_api_refuses_bad_requests(
    app: Quart, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    request = getattr(app.test_client(), method.lower())
    response = await request(path, data="x", headers=headers)
    assert response.status_code == status


async def test_disconnecting_a_user_closes_their_sockets_only(app: Quart) -> None:
    async with asgi_connect(app, "/ws/rooms/lobby", ticket_header("alice")) as alice:
        roster: set[str] = set()
        await roster_until(alice, roster, {"alice"})
        async with (
            asgi_connect(app, "/ws/rooms/lobby", ticket_header("bob")) as bob,
            asgi_connect(app, "/ws/inbox", ticket_header("bob")) as bobs_inbox,
        ):
            await roster_until(alice, roster, {"alice", "bob"})
            # Both accepted: a handshake still in flight is refused with 401 instead.
            await bob.accepted()
            await bobs_inbox.accepted()
            assert subscriber_count(app, "!bob") == 2
            client = app.test_client()
            response = await client.delete("/api/users/bob/connections", headers=SERVER)
            assert response.status_code == 204
            for ws in (bob, bobs_inbox):
                with pytest.raises(Closed) as closed:
                    while True:
                        await ws.receive()
                assert closed.value.code == 4001
                assert closed.value.reason == "disconnected by the server"
        # The in-process client reports the disconnect as it leaves the block.
        seen = await roster_until(alice, roster, {"alice"})
        assert seen[-1] == {"type": "leave", "room": "lobby", "user": "bob"}
        await alice.send("still here")
        assert (await next_frame(alice.receive))["data"] == "still here"
    async with app.app_context():
        with pytest.raises(ValueError, match="user id"):
            await disconnect_user("no spaces")


async def test_one_user_over_the_cap_is_refused_with_429(make_app: AppFactory) -> None:
    app = await make_app(CONNECTIONS_PER_USER=2)
    async with (
        asgi_connect(app, "/ws/inbox", ticket_header("bob")),
        asgi_connect(app, "/ws/inbox", ticket_header("bob")),
    ):
        assert (await refusal(app, "/ws/inbox", ticket_header("bob"))).status == 429
        async with asgi_connect(app, "/ws/inbox", ticket_header("alice")) as alice:
            await alice.send("x")  # let in: the cap is per user
            with pytest.raises(Closed):
                await alice.receive()
    async with asgi_connect(app, "/ws/inbox", ticket_header("bob")):
        pass  # the closed sockets no longer count


async def test_a_server_ticket_names_the_user_of_the_body(app: Quart) -> None:
    client = app.test_client()
    response = await client.post("/api/tickets", json={"user": "carol"}, headers=SERVER)
    body = await response.get_json()
    assert body["expires_in"] == 60
    header = {"Authorization": f"Bearer {body['ticket']}"}
    async with asgi_connect(app, "/ws/rooms/lobby", header) as carol:
        assert (await frame(carol))["users"] == ["carol"]
    bad = await client.post("/api/tickets", json={"user": "not ok"}, headers=SERVER)
    assert bad.status_code == 400


async def test_the_demo_login_sets_a_session_that_opens_sockets(make_app: AppFactory) -> None:
    app = await make_app(DEMO_LOGIN=True, SECRET_KEY=None)
    client = app.test_client()
    assert (await client.get("/login")).status_code == 200
    for form in ({"name": "bad name"}, {}):  # no name is no login, not a default name
        assert (await client.post("/login", form=form)).status_code == 400
    response = await client.post("/login", form={"name": "dana"})
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"].split(";")[0]
    async with asgi_connect(app, "/ws/rooms/lobby", {"Cookie": cookie}) as dana:
        assert (await frame(dana))["users"] == ["dana"]
    ticket = await (await client.post("/api/tickets", headers={"Cookie": cookie})).get_json()
    assert Tickets(str(app.secret_key), 60).read(ticket["ticket"]).user == "dana"


async def test_a_visitor_page_opens_only_the_echo_socket(make_app: AppFactory) -> None:
    # A refused handshake would be retried with backoff for as long as the page is open.
    app = await make_app(DEMO_LOGIN=True, SECRET_KEY=None)
    client = app.test_client()
    echo = await (await client.get("/")).get_data(as_text=True)
    assert 'data-socket-path="/ws"' in echo
    for channel in ("broadcast", "rooms", "inbox"):
        page = await (await client.get(f"/?channel={channel}")).get_data(as_text=True)
        assert "data-socket-path" not in page and 'id="room-form"' not in page
        assert "disconnected (log in to use this channel)" in page
    await client.post("/login", form={"name": "dana"})  # the client keeps the cookie
    page = await (await client.get("/?channel=inbox")).get_data(as_text=True)
    assert 'data-socket-path="/ws/inbox"' in page and '<strong id="me">dana</strong>' in page
    page = await (await client.get("/?channel=rooms")).get_data(as_text=True)
    assert 'id="room-form"' in page and "log in to use" not in page


async def test_the_demo_login_is_404_without_demo_login(app: Quart) -> None:
    client = app.test_client()
    assert (await client.get("/login")).status_code == 404
    assert (await client.post("/login", form={"name": "dana"})).status_code == 404


async def test_the_app_does_not_start_without_a_secret_key() -> None:
    from {{ cookiecutter.package_name }} import create_app

    test_app = create_app({"SECRET_KEY": None}).test_app()
    said = (
        "QUART_SECRET_KEY is not set: it signs sessions and tickets"
        " (a long random string; QUART_DEMO_LOGIN=1 runs a demo without one)"
    )
    with pytest.raises(Exception, match=re.escape(said) + "$"):  # Quart's LifespanError
        await test_app.startup()
    # Refused before anything started: no broker or presence task is left running.
    assert asyncio.all_tasks() == {asyncio.current_task()}
