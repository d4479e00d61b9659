"""``send_to_user``, ``disconnect_user`` and the set-up of users for the app."""

from __future__ import annotations

import logging
import secrets

from prometheus_client import Counter, Gauge
from quart import Quart, current_app
from quart_auth import QuartAuth

from ..broadcast.api import current_broker
from ..broadcast.hub import Hub
from .identity import USER_LINE, check_user_id, release_user, require_user
from .login import demo_blueprint
from .presence import LocalUsers, init_presence
{%- if cookiecutter.broadcast_backend == "redis" %}
from .presence_redis import RedisPresenceStore
{%- else %}
from .presence_memory import MemoryPresenceStore
{%- endif %}

log = logging.getLogger(__name__)

INBOX = "@"  # topic prefix: "@alice" is alice's inbox, kept and resumed as a room is


def init_users(app: Quart) -> None:
    """Sessions, tickets, the handshake check and presence; after ``init_broadcast``."""
    if not app.config["SECRET_KEY"] and app.config["DEMO_LOGIN"]:
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
        log.warning("QUART_DEMO_LOGIN=1: a random QUART_SECRET_KEY for this run only")
    if app.config["DEMO_LOGIN"]:
        app.register_blueprint(demo_blueprint)
    # The demo serves plain http; anywhere else the cookie needs https.
    QuartAuth(app, cookie_secure=not app.config["DEMO_LOGIN"])
    app.before_websocket(require_user)
    app.teardown_websocket(release_user)
    broker = app.extensions["broker"]
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


async def send_to_user(user: str, text: str, sender: str | None = None) -> str:
    """Send ``text`` to every open inbox of ``user``, on every process; return its id.

    It is kept in the inbox's history, as a room message is, for inboxes that
    resume. ``sender`` becomes the frame's ``from``. Raises ``ValueError`` for
    a bad user id, ``BroadcastUnavailable`` if the broker cannot take it.
    """
    problem = check_user_id(user)
    if problem is not None:
        raise ValueError(problem)
    broker = current_broker()
    message_id = await broker.publish_to_room(INBOX + user, text, sender)
    current_app.extensions["direct_messages"].inc()
    return message_id


async def disconnect_user(user: str, reason: str = "disconnected by the server") -> None:
    """Close every websocket of ``user`` on every process, with 4001 and ``reason``."""
    problem = check_user_id(user)
    if problem is not None:
        raise ValueError(problem)
    await current_broker().publish_notice(USER_LINE + user, reason)
