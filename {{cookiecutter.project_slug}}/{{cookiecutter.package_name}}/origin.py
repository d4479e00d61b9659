"""Refuse websocket handshakes from other sites (cross-site websocket hijacking)."""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import current_app, websocket
from quart.typing import ResponseReturnValue

from .metrics import current_metrics


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
