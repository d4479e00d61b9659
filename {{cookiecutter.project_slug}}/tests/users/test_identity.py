"""Credentials: what a ticket or a session names, and when a revocation ends it."""

from __future__ import annotations

import pytest
from quart import Quart

from {{ cookiecutter.package_name }}.users.identity import Credential, Tickets, unrevoked

from ..helpers import AppFactory
from .tickets import TEST_SECRET_KEY


@pytest.mark.parametrize(
    ("signed", "user", "issued"),
    [
        ("alice:1700000000000:nonce", "alice", 1700000000000),
        ("alice:12:a:b", "alice", 12),  # the time is the first field after the user
        ("alice:soon", "alice", 0),
        ("alice", "alice", 0),  # a login of your own: a bare user id
    ],
)
def test_a_credential_names_its_user_and_when_it_was_issued(
    signed: str, user: str, issued: int
) -> None:
    assert Credential.parse(signed) == Credential(user, issued)


def test_tickets_are_signed_only_with_a_key_of_32_characters_or_more() -> None:
    Tickets("k" * 32, 60)
    for key in ("k" * 31, "", None):
        with pytest.raises(RuntimeError, match="QUART_SECRET_KEY is unset or shorter than 32"):
            Tickets(key, 60)


def test_a_ticket_reads_back_as_its_user_and_is_unique() -> None:
    tickets = Tickets(TEST_SECRET_KEY, 60)
    first, second = tickets.issue("alice"), tickets.issue("alice")
    assert first != second  # a nonce: two in one millisecond are still two
    read = tickets.read(first)
    assert (read.user, read.ticket) == ("alice", first.rsplit(".", 2)[0])


async def test_a_credential_issued_at_the_revocation_still_counts(make_app: AppFactory) -> None:
    app: Quart = await make_app()
    sessions = app.extensions["sessions"]
    await sessions.revoke("alice")
    revoked_at = await sessions.not_before("alice")
    async with app.app_context():
        assert await unrevoked(Credential("alice", revoked_at)) == Credential("alice", revoked_at)
        with pytest.raises(ValueError, match="this session has ended"):
            await unrevoked(Credential("alice", revoked_at - 1))
