"""Refusals in one process: handshakes, API calls and settings, each saying why.

The same refusals over real TCP, on both servers, are in ``test_fail_closed.py``;
these check the whole answer (status, header, body, count), which is what a
client and an operator read.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from quart import Quart
from quart_auth import QuartAuth

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.broadcast.flood import OverQuota
from {{ cookiecutter.package_name }}.users import send_to_user
from {{ cookiecutter.package_name }}.users.api import anonymous_limit, revoke_user
from {{ cookiecutter.package_name }}.users.identity import Tickets

from ..asgi_websocket import Closed, Refused, asgi_connect
from ..broadcast.broadcasting import next_frame
from ..helpers import METRICS_TOKEN, AppFactory, metric
from .tickets import TEST_SECRET_KEY, ticket_header

NO_CREDENTIAL = "log in, or send Authorization: Bearer <ticket> (from POST /api/tickets)"


@pytest.fixture
async def app(make_app: AppFactory) -> Quart:
    return await make_app(
        METRICS_TOKEN=METRICS_TOKEN, CONNECTIONS_PER_USER=1, ANONYMOUS_CONNECTIONS=1
    )


async def refused(app: Quart, path: str, headers: dict[str, str]) -> Refused:
    with pytest.raises(Refused) as refusal:
        async with asgi_connect(app, path, headers) as ws:
            await ws.receive()
    return refusal.value


def answer(refusal: Refused) -> tuple[int, dict[str, str], object]:
    """Status, headers (names in lower case) and JSON body of a refusal."""
    headers = {name.lower(): value for name, value in refusal.headers.items()}
    return refusal.status, headers, json.loads(refusal.body)


async def refusals(app: Quart, reason: str) -> float:
    return await metric(app, f'websocket_handshakes_refused_total{% raw %}{{reason="{reason}"}}{% endraw %}')


async def test_no_credential_is_told_how_to_get_one(app: Quart) -> None:
    status, headers, body = answer(await refused(app, "/ws/inbox", {}))
    assert (status, headers["www-authenticate"]) == (401, "Bearer")
    assert body == {"error": NO_CREDENTIAL}
    assert await refusals(app, "no_credential") == 1


async def test_a_ticket_that_is_not_one_is_refused(app: Quart) -> None:
    refusal = await refused(app, "/ws/inbox", {"Authorization": "Bearer forged"})
    status, headers, body = answer(refusal)
    assert (status, headers["www-authenticate"]) == (401, "Bearer")
    assert body == {"error": "the ticket is not valid"}
    assert await refusals(app, "bad_ticket") == 1


async def test_a_ticket_opens_its_first_socket_and_no_other(app: Quart) -> None:
    ticket = ticket_header("alice")
    async with asgi_connect(app, "/ws/inbox", ticket) as first:
        await first.accepted()
    status, _, body = answer(await refused(app, "/ws/inbox", ticket))
    assert status == 401
    assert body == {"error": "the ticket has opened a socket: get a new one"}
    assert await refusals(app, "spent_ticket") == 1


async def test_a_user_over_their_cap_is_told_to_retry_and_may_once_a_socket_closes(
    app: Quart,
) -> None:
    async with asgi_connect(app, "/ws/inbox", ticket_header("alice")) as first:
        await first.accepted()
        status, headers, body = answer(await refused(app, "/ws/inbox", ticket_header("alice")))
        assert (status, headers["retry-after"]) == (429, "5")
        assert body == {"error": "'alice' has 1 open websockets already"}
        # Another user is not counted against alice.
        async with asgi_connect(app, "/ws/inbox", ticket_header("bob")) as bob:
            await bob.accepted()
    assert await refusals(app, "per_user_cap") == 1
    async with asgi_connect(app, "/ws/inbox", ticket_header("alice")) as again:
        await again.accepted()


async def test_a_ticket_issued_before_a_revocation_is_refused(app: Quart) -> None:
    ticket = ticket_header("carol")
    await asyncio.sleep(0.01)  # revoked strictly after the ticket was issued
    async with app.app_context():
        await revoke_user("carol")
    status, _, body = answer(await refused(app, "/ws/inbox", ticket))
    assert status == 401
    assert body == {"error": "this session has ended: log in again"}
    assert await refusals(app, "revoked") == 1
    async with asgi_connect(app, "/ws/inbox", ticket_header("carol")) as fresh:
        await fresh.accepted()  # a ticket issued after it is good


async def test_anonymous_sockets_have_a_cap_of_their_own(app: Quart) -> None:
    async with asgi_connect(app, "/ws", {}) as first:
        await first.accepted()
        status, headers, body = answer(await refused(app, "/ws", {}))
        assert (status, headers["retry-after"]) == (503, "5")
        assert body == {"error": "too many open websockets without a user: retry later"}
        async with asgi_connect(app, "/ws/inbox", ticket_header("dave")) as user:
            await user.accepted()  # users are not counted against it
    assert await refusals(app, "anonymous_cap") == 1
    async with asgi_connect(app, "/ws", {}) as again:  # the first one's place is free
        await again.accepted()


async def test_the_session_check_ends_a_socket_whose_revocation_notice_was_missed(
    make_app: AppFactory,
) -> None:
    app = await make_app(SESSION_CHECK_SECONDS=1)
    async with (
        asgi_connect(app, "/ws/inbox", ticket_header("erin")) as erin,
        asgi_connect(app, "/ws/inbox", ticket_header("frank")) as frank,
    ):
        await erin.accepted()
        await frank.accepted()
        await asyncio.sleep(0.01)
        # Revoked without the notice to the sockets, as when Redis was down then.
        await app.extensions["sessions"].revoke("erin")
        with pytest.raises(Closed) as closed:
            async with asyncio.timeout(3):
                while True:
                    await erin.receive()
        assert closed.value.code == 4001
        assert closed.value.reason == "this session has ended: log in again"
        async with app.app_context():  # frank's session stands
            await send_to_user("frank", "still here")
        assert (await next_frame(frank.receive))["data"] == "still here"


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "send QUART_ANY_USER_TOKEN, a ticket, or a session cookie"),
        ({"Authorization": "Bearer forged"}, "the ticket is not valid"),
    ],
)
async def test_the_api_says_what_credential_it_wants(
    app: Quart, headers: dict[str, str], error: str
) -> None:
    response = await app.test_client().post("/api/users/bob/messages", data="hi", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.content_type == "application/json"
    assert await response.get_json() == {"error": error}


@pytest.mark.parametrize(
    ("most", "limit", "expected"),
    [(100, None, 25), (3, None, 1), (100, 1, 1), (100, 100, 100)],
)
def test_the_anonymous_cap_is_a_quarter_of_all_unless_set(
    most: int, limit: int | None, expected: int
) -> None:
    config = {"MAX_CONNECTIONS": most, "ANONYMOUS_CONNECTIONS": limit}
    cap = anonymous_limit(config)
    assert (cap, type(cap)) == (expected, int)


@pytest.mark.parametrize("limit", [0, 101, True, "5"])
def test_an_anonymous_cap_out_of_range_stops_the_app_naming_it(limit: object) -> None:
    with pytest.raises(ValueError, match="QUART_ANONYMOUS_CONNECTIONS must be 1 to"):
        anonymous_limit({"MAX_CONNECTIONS": 100, "ANONYMOUS_CONNECTIONS": limit})


def test_a_key_of_32_characters_is_enough_and_31_are_not() -> None:
    assert create_app({"SECRET_KEY": "k" * 32}).secret_key == "k" * 32
    with pytest.raises(ValueError) as short:
        create_app({"SECRET_KEY": "k" * 31})
    assert str(short.value) == (
        "QUART_SECRET_KEY must be at least 32 characters"
        " (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )


def test_a_key_of_digits_is_text() -> None:
    assert create_app({"SECRET_KEY": 10**40}).secret_key == str(10**40)


def test_the_demo_login_makes_a_random_key_for_its_run_and_a_cookie_for_plain_http() -> None:
    first = create_app({"SECRET_KEY": None, "DEMO_LOGIN": True})
    second = create_app({"SECRET_KEY": None, "DEMO_LOGIN": True})
    assert isinstance(first.secret_key, str) and len(first.secret_key) >= 32
    assert first.secret_key != second.secret_key
    assert not cookie_secure(first)
    assert cookie_secure(create_app({"SECRET_KEY": "k" * 32})) is True


def cookie_secure(app: Quart) -> bool:
    extensions = [each for value in app.extensions.values() if isinstance(value, list)
                  for each in value]  # fmt: skip
    (auth,) = [each for each in extensions if isinstance(each, QuartAuth)]
    return auth.cookie_secure is True


async def test_an_expired_ticket_is_told_to_get_a_new_one(app: Quart) -> None:
    tickets = Tickets(TEST_SECRET_KEY, 60)
    tickets.signer.get_timestamp = lambda: int(time.time()) - 61  # type: ignore[method-assign]
    expired = {"Authorization": f"Bearer {tickets.issue('alice')}"}
    status, _, body = answer(await refused(app, "/ws/inbox", expired))
    assert status == 401
    assert body == {"error": "the ticket has expired: get a new one"}
    assert await refusals(app, "expired_ticket") == 1


async def test_a_spent_ticket_is_refused_by_the_api_too(app: Quart) -> None:
    ticket = ticket_header("alice")
    async with asgi_connect(app, "/ws/inbox", ticket) as first:
        await first.accepted()
    response = await app.test_client().post("/api/users/bob/messages", data="hi", headers=ticket)
    assert response.status_code == 401
    assert await response.get_json() == {"error": "the ticket has opened a socket: get a new one"}


async def test_the_anonymous_cap_counts_each_socket_in_and_out(make_app: AppFactory) -> None:
    app = await make_app(ANONYMOUS_CONNECTIONS=2)
    async with asgi_connect(app, "/ws", {}) as first:
        await first.accepted()
        async with asgi_connect(app, "/ws", {}) as second:
            await second.accepted()
            assert (await refused(app, "/ws", {})).status == 503
        async with asgi_connect(app, "/ws", {}) as third:  # the second's place
            await third.accepted()
            assert (await refused(app, "/ws", {})).status == 503


async def test_without_a_key_and_without_the_start_check_every_request_is_refused() -> None:
    # As under `uvicorn --lifespan off`: no before_serving hook ever runs.
    app = create_app({"SECRET_KEY": None})
    client = app.test_client()
    refusal = {"error": "QUART_SECRET_KEY is not set: this app refuses every request"}
    for path in ("/", "/healthz"):
        response = await client.get(path)
        assert (response.status_code, await response.get_json()) == (503, refusal), path
    assert (await client.post("/api/tickets")).status_code == 503
    for path in ("/ws/inbox", "/ws"):
        status, _, body = answer(await refused(app, path, {}))
        assert (status, body) == (503, refusal), path


def test_the_demo_key_is_said_to_be_for_this_run_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        create_app({"SECRET_KEY": None, "DEMO_LOGIN": True})
    assert "QUART_DEMO_LOGIN=1: a random QUART_SECRET_KEY for this run only" in caplog.messages


async def test_a_bad_user_id_is_refused_by_the_python_api_too(app: Quart) -> None:
    """``send_to_user`` and ``revoke_user`` are called from app code, not only the routes."""
    async with app.app_context():
        for call in (send_to_user("no spaces", "hi"), revoke_user("no spaces")):
            with pytest.raises(ValueError, match="user id"):
                await call


async def test_a_users_messages_count_against_their_quota_and_the_servers_do_not(
    make_app: AppFactory,
) -> None:
    app = await make_app(USER_MESSAGES_PER_SECOND=1, USER_MESSAGE_BURST=1)
    async with app.app_context():
        await send_to_user("bob", "first", sender="alice")
        # One a second: five at once pass only if each waits a second (a stalled run).
        with pytest.raises(OverQuota):
            for _ in range(5):
                await send_to_user("bob", "more", sender="alice")
        for _ in range(5):  # from the server (no sender): no quota
            await send_to_user("bob", "from the server")


async def test_revoking_a_user_closes_their_open_sockets_saying_why(app: Quart) -> None:
    async with asgi_connect(app, "/ws/inbox", ticket_header("dave")) as dave:
        await dave.accepted()
        async with app.app_context():
            await revoke_user("dave")
        with pytest.raises(Closed) as closed:
            while True:
                await dave.receive()
        assert closed.value.reason == "this session has ended: log in again"
