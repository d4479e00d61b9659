"""Bearer tokens: the one check that every protected endpoint uses."""

from __future__ import annotations

import hmac

from quart import request
from quart.typing import ResponseReturnValue


def refuse_without_token(expected: str) -> ResponseReturnValue | None:
    """None if the request carries ``expected`` as its bearer token, else the 401 answer."""
    # Header names are case-insensitive, and a missing one is refused whatever the default.
    header = request.headers.get("Authorization", "")  # pragma: no mutate
    scheme, _, given = header.partition(" ")
    # As bytes: compare_digest refuses non-ASCII text, and its time says nothing.
    given_token, expected_token = given.strip().encode(), expected.encode()
    if scheme.lower() == "bearer" and hmac.compare_digest(given_token, expected_token):
        return None
    return {"error": "missing or wrong bearer token"}, 401, {"WWW-Authenticate": "Bearer"}
