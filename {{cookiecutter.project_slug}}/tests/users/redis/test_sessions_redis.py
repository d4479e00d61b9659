"""Revocations and spent tickets in Redis, against a real redis-server."""

from __future__ import annotations

import time
import uuid

from {{ cookiecutter.package_name }}.broadcast.broker_redis import RedisBroker
from {{ cookiecutter.package_name }}.users.sessions_redis import Sessions

from ...broadcast.redis.redis_server import RedisServer
from ...helpers import AppFactory
from ..tickets import ticket_header

KEEP_SECONDS = 3600  # a session cookie's lifetime
TICKET_SECONDS = 30


async def sessions_of(make_app: AppFactory) -> Sessions:
    broker: RedisBroker = (await make_app()).extensions["broker"]
    return Sessions(broker, KEEP_SECONDS, TICKET_SECONDS)


async def expires_in_ms(sessions: Sessions, key: str) -> int:
    return int(await sessions.broker.connected().pttl(key))


async def test_a_revocation_is_now_in_ms_and_kept_as_long_as_a_session_lives(
    make_app: AppFactory,
) -> None:
    sessions = await sessions_of(make_app)
    user = f"user-{uuid.uuid4().hex[:8]}"  # the tests share one redis-server
    assert await sessions.not_before(user) == 0  # never revoked: everything counts
    before = int(time.time() * 1000)
    await sessions.revoke(user)
    assert before <= await sessions.not_before(user) <= int(time.time() * 1000)
    ttl = await expires_in_ms(sessions, sessions.key("revoked", user))
    assert KEEP_SECONDS * 1000 - 5000 < ttl <= KEEP_SECONDS * 1000


async def test_a_ticket_is_spent_once_and_kept_a_little_longer_than_it_lives(
    make_app: AppFactory,
) -> None:
    sessions = await sessions_of(make_app)
    ticket = f"ticket-{uuid.uuid4().hex}"
    assert await sessions.spent(ticket) is False
    assert await sessions.spend(ticket) is True
    assert await sessions.spend(ticket) is False  # on every process: Redis said so
    assert await sessions.spent(ticket) is True
    # Ages are checked in whole seconds: kept 2 s past the ticket's lifetime.
    ttl = await expires_in_ms(sessions, sessions.key("ticket", ticket))
    kept = (TICKET_SECONDS + 2) * 1000
    assert kept - 5000 < ttl <= kept


async def test_a_call_while_redis_is_down_is_refused_with_503_saying_so(
    make_app: AppFactory, redis_server: RedisServer
) -> None:
    # Whether a credential was revoked is in Redis: without it, no answer but 503.
    client = (await make_app(REDIS_URL=redis_server.url)).test_client()
    redis_server.stop()
    try:
        response = await client.post(
            "/api/users/bob/messages", data="hi", headers=ticket_header("alice")
        )
    finally:
        redis_server.start()
    assert response.status_code == 503
    assert response.content_type == "application/json"
    error = (await response.get_json())["error"]
    assert error.startswith("Redis is unavailable: "), error
