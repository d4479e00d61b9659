"""Bearer tokens: the one check that every protected endpoint uses."""

from __future__ import annotations

import hmac

from quart import request
from quart.typing import ResponseReturnValue
from werkzeug.datastructures import Headers


def bearer_token(headers: Headers) -> str | None:
    """The credential of an ``Authorization: Bearer <token>`` header, if there is one."""
    # Header names are case-insensitive, and a missing one is refused whatever the default.
    header = headers.get("Authorization", "")  # pragma: no mutate
    scheme, _, given = header.partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def refuse_without_token(expected: str) -> ResponseReturnValue | None:
    """None if the request carries ``expected`` as its bearer token, else the 401 answer."""
    given = bearer_token(request.headers)
    # As bytes: compare_digest refuses non-ASCII text, and its time says nothing.
    if given is not None and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return {"error": "missing or wrong bearer token"}, 401, {"WWW-Authenticate": "Bearer"}
