"""Revocations and spent tickets in this process's memory."""

from __future__ import annotations

import time

import pytest

from {{ cookiecutter.package_name }}.users import sessions_memory
from {{ cookiecutter.package_name }}.users.sessions_memory import Sessions

TICKET_SECONDS = 1


async def test_a_revocation_is_the_time_it_was_made_in_ms() -> None:
    sessions = Sessions(3600, TICKET_SECONDS)
    assert await sessions.not_before("alice") == 0  # never revoked: everything counts
    before = int(time.time() * 1000)
    await sessions.revoke("alice")
    assert before <= await sessions.not_before("alice") <= int(time.time() * 1000)
    assert await sessions.not_before("bob") == 0


async def test_a_spent_ticket_is_kept_until_it_has_expired_anyway_then_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A ticket's age is checked in whole seconds: kept for its lifetime plus 2 s,
    # then dropped, so that memory holds only the tickets that still count.
    now = 1_000_000
    monkeypatch.setattr(sessions_memory, "now_ms", lambda: now)
    sessions = Sessions(3600, TICKET_SECONDS)
    assert await sessions.spend("one") is True
    assert await sessions.spend("one") is False
    kept = (TICKET_SECONDS + 2) * 1000
    now += kept
    assert await sessions.spend("two") is True  # not yet past: "one" is still spent
    assert await sessions.spent("one") is True
    now += 1
    assert await sessions.spend("three") is True  # "one" is past its time: forgotten
    assert await sessions.spent("one") is False
    assert await sessions.spent("two") is True
    assert sessions.spent_tickets == {"two", "three"}
