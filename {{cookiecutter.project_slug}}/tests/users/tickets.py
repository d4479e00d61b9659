"""Tickets for the tests' clients: every app and server of the tests signs with one key."""

from __future__ import annotations

import itertools

from {{ cookiecutter.package_name }}.users.identity import Tickets

TEST_SECRET_KEY = "a-test-secret-key-of-the-tests-only-0123"
TESTERS = itertools.count()


def ticket_header(user: str | None = None, key: str = TEST_SECRET_KEY) -> dict[str, str]:
    """An ``Authorization`` header with a ticket for ``user``, or for a new user each call."""
    ticket = Tickets(key, 60).issue(user or f"tester-{next(TESTERS)}")
    return {"Authorization": f"Bearer {ticket}"}
