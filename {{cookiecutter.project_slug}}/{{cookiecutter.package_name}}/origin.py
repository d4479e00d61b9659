"""Refuse websocket handshakes and state changes from other sites' pages.

A browser sends its cookies with a handshake or a ``POST`` that another
site's page starts (cross-site websocket hijacking, CSRF); its ``Origin``
header tells. Both checks allow the same origins: this host's own, those in
``QUART_ALLOWED_ORIGINS``, and clients that send none (not a browser).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import current_app, request, websocket
from quart.typing import ResponseReturnValue

from .metrics import current_metrics
from .tokens import bearer_token


def origin_allowed(origin: str | None, host: str, allowed: frozenset[str]) -> bool:
    """True for no Origin (not a browser), this host, or an allowed origin."""
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    return urlsplit(origin).netloc == host.lower() or origin in allowed


async def check_origin() -> ResponseReturnValue | None:
    """Answer 403 before the handshake is accepted if the Origin is foreign."""
    origin = websocket.headers.get("Origin")  # pragma: no mutate (names are case-insensitive)
    if origin_allowed(origin, websocket.host, current_app.config["ALLOWED_ORIGINS"]):
        return None
    current_metrics().handshakes_refused.labels("origin").inc()
    return {"error": f"origin {origin!r} is not allowed"}, 403


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def check_request_origin() -> ResponseReturnValue | None:
    """Answer 403 to a state change (``POST``, ``DELETE``, ...) from a foreign Origin.

    A request with a bearer token is let through: a page of another site
    cannot send one without a CORS preflight, which this app never grants;
    the route checks the token. (A browser may add Basic credentials itself.)
    """
    if request.method in SAFE_METHODS or bearer_token(request.headers) is not None:
        return None
    origin = request.headers.get("Origin")  # pragma: no mutate (names are case-insensitive)
    if origin_allowed(origin, request.host, current_app.config["ALLOWED_ORIGINS"]):
        return None
    return {"error": f"origin {origin!r} is not allowed"}, 403
