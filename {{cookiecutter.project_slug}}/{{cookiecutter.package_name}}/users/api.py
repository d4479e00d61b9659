"""``send_to_user``, ``disconnect_user`` and the set-up of users for the app."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge
from quart import Quart, current_app, request
from quart.typing import ResponseReturnValue
from quart_auth import QuartAuth

from ..broadcast.api import current_broker, message_size
from ..broadcast.broker import BroadcastUnavailable
from ..broadcast.flood import SenderQuota
from ..broadcast.hub import Hub
from ..broadcast.rooms import check_frame_size
from .identity import (
    MIN_SECRET_KEY,
    USER_LINE,
    AnonymousCap,
    check_user_id,
    current_sessions,
    init_sessions,
    release_user,
    require_user,
    session_user,
)
from .login import demo_blueprint
from .presence import LocalUsers, init_presence
{%- if cookiecutter.broadcast_backend == "redis" %}
from .presence_redis import RedisPresenceStore
from .sessions_redis import Sessions
{%- else %}
from .presence_memory import MemoryPresenceStore
from .sessions_memory import Sessions
{%- endif %}

log = logging.getLogger(__name__)

INBOX = "@"  # topic prefix: "@alice" is alice's inbox, kept and resumed as a room is


def init_users(app: Quart) -> None:
    """Sessions, tickets, the handshake check and presence; after ``init_broadcast``."""
    if not app.config["SECRET_KEY"] and app.config["DEMO_LOGIN"]:
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
        log.warning("QUART_DEMO_LOGIN=1: a random QUART_SECRET_KEY for this run only")
    key = app.config["SECRET_KEY"]
    if key is not None:  # a key of digits is read as a JSON number: it is text
        key = app.config["SECRET_KEY"] = str(key)
    if key is not None and len(key) < MIN_SECRET_KEY:
        raise ValueError(
            f"QUART_SECRET_KEY must be at least {MIN_SECRET_KEY} characters"
            " (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    app.extensions["anonymous_cap"] = AnonymousCap(anonymous_limit(app.config))
    config = app.config
    app.extensions["sender_quota"] = SenderQuota(
        config["USER_MESSAGES_PER_SECOND"],
        config["USER_MESSAGE_BURST"],
        config["USER_BYTES_PER_SECOND"],
        max(config["USER_BYTES_PER_SECOND"], config["MAX_MESSAGE_SIZE"]),
    )
    if not key:  # served without the before_serving check (--lifespan off): refuse all
        app.before_request(refuse_without_key)
        app.before_websocket(refuse_without_key)
    if app.config["DEMO_LOGIN"]:
        app.register_blueprint(demo_blueprint)
    # The demo serves plain http; anywhere else the cookie needs https.
    auth = QuartAuth(app, cookie_secure=not app.config["DEMO_LOGIN"])
    app.before_websocket(require_user)
    app.teardown_websocket(release_user)
    app.context_processor(page_user)
    broker = app.extensions["broker"]
    lifetime = auth.duration or 365 * 24 * 3600  # a session cookie's (QUART_AUTH_DURATION)
{%- if cookiecutter.broadcast_backend == "redis" %}
    init_sessions(app, Sessions(broker, lifetime, app.config["TICKET_SECONDS"]))
{%- else %}
    init_sessions(app, Sessions(lifetime, app.config["TICKET_SECONDS"]))
{%- endif %}
    local: LocalUsers = {}
{%- if cookiecutter.broadcast_backend == "redis" %}
    store = RedisPresenceStore(broker, app.config["PRESENCE_TTL"])
{%- else %}
    store = MemoryPresenceStore(local)
{%- endif %}
    init_presence(app, broker, store, local)
    metrics = app.extensions["metrics"]
    hub: Hub = broker.hub
    present = Gauge("users_connected", "Users with a socket here.", registry=metrics.registry)
    present.set_function(lambda: sum(topic.startswith(USER_LINE) for topic in hub.topics))
    app.extensions["direct_messages"] = Counter(
        "direct_messages", "Messages sent to one user's inbox.", registry=metrics.registry
    )
    app.extensions["channels"]["inbox"] = "/ws/inbox"
    parts = app.extensions["page_parts"]
    parts["after_header"].append("users/identity.html")
    parts["before_log"].append("users/presence.html")
    parts["after_send"].append("users/inbox.html")


async def page_user() -> dict[str, str | None]:
    """The page's ``me`` (the user of a valid session cookie, else None) and ``locked``.

    ``locked`` says why the page opens no socket: every channel but echo needs
    a user (``NEEDS_A_USER``), and a refused handshake would only be retried.
    """
    try:
        me = await session_user()
    except BroadcastUnavailable:  # the page loads; its socket will say what is wrong
        return {"me": None, "locked": None}
    if me is None and request.args.get("channel", "echo") != "echo":
        return {"me": None, "locked": "log in to use this channel"}
    return {"me": me, "locked": None}


async def require_secret_key() -> None:
    """Refuse to serve without ``QUART_SECRET_KEY`` (a ``before_serving`` hook).

    Checked when serving starts, not at import: importing the package (tests,
    tools) needs no key. ``create_app`` registers it first, so a refusal
    leaves nothing started.
    """
    if not current_app.config["SECRET_KEY"]:
        raise RuntimeError(
            "QUART_SECRET_KEY is not set: it signs sessions and tickets"
            " (a long random string; QUART_DEMO_LOGIN=1 runs a demo without one)"
        )


def anonymous_limit(config: Mapping[str, Any]) -> int:
    """``QUART_ANONYMOUS_CONNECTIONS``, at most ``QUART_MAX_CONNECTIONS``; unset: a quarter."""
    limit, most = config["ANONYMOUS_CONNECTIONS"], int(config["MAX_CONNECTIONS"])
    if limit is None:
        return max(1, most // 4)
    if type(limit) is not int or not 0 < limit <= most:
        name = "QUART_ANONYMOUS_CONNECTIONS"
        raise ValueError(f"{name} must be 1 to QUART_MAX_CONNECTIONS ({most}), got {limit!r}")
    return int(limit)


async def refuse_without_key() -> ResponseReturnValue:
    return {"error": "QUART_SECRET_KEY is not set: this app refuses every request"}, 503


async def send_to_user(user: str, text: str, sender: str | None = None) -> str:
    """Send ``text`` to every open inbox of ``user``, on every process; return its id.

    It is kept in the inbox's history, as a room message is, for inboxes that
    resume. ``sender`` becomes the frame's ``from``. Raises ``ValueError`` for
    a bad user id or a frame over the size limit (``FrameTooBig``),
    ``OverQuota`` for a sender past their quota, ``BroadcastUnavailable`` if
    the broker cannot take it.
    """
    problem = check_user_id(user)
    if problem is not None:
        raise ValueError(problem)
    check_frame_size(INBOX + user, text, sender, current_app.config["MAX_MESSAGE_SIZE"])
    if sender is not None:
        current_app.extensions["sender_quota"].take(sender, message_size(text))
    broker = current_broker()
    message_id = await broker.publish_to_room(INBOX + user, text, sender)
    current_app.extensions["direct_messages"].inc()
    return message_id


async def disconnect_user(user: str, reason: str = "disconnected by the server") -> None:
    """Close every websocket of ``user`` on every process, with 4001 and ``reason``.

    Their credentials stay valid: a client may reconnect. ``revoke_user`` ends them.
    """
    problem = check_user_id(user)
    if problem is not None:
        raise ValueError(problem)
    await current_broker().publish_notice(USER_LINE + user, reason)


async def revoke_user(user: str, reason: str = "this session has ended: log in again") -> None:
    """End every session and ticket of ``user`` issued until now, and close their sockets.

    A logout does this; so does ``DELETE /api/users/<user>/connections``. The
    user logs in again for a new session.
    """
    problem = check_user_id(user)
    if problem is not None:
        raise ValueError(problem)
    await current_sessions().revoke(user)
    await disconnect_user(user, reason)
