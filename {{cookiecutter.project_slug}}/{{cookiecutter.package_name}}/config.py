"""Configuration: every default, overridden by ``QUART_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Quart

DEFAULTS: dict[str, Any] = {
    "TITLE": {{ cookiecutter.project_name | tojson }},
    # Extra origins (besides this host's own) allowed to open a websocket.
    "ALLOWED_ORIGINS": "",
    # Largest message in bytes, under either server (hypercorn_config.py).
    "MAX_MESSAGE_SIZE": 1024 * 1024,
    # Open websockets per process; past it a handshake gets 503 + Retry-After.
    # Each costs a file descriptor and some 40 KiB: raise `ulimit -n` with it.
    "MAX_CONNECTIONS": 1000,
    # Keepalive, in seconds: the server pings every PING_INTERVAL and drops a
    # peer silent for PING_INTERVAL + PING_TIMEOUT, under either server.
    "PING_INTERVAL": 20,
    "PING_TIMEOUT": 20,
    # Bearer token that turns GET /metrics on; None: /metrics answers 404.
    "METRICS_TOKEN": None,
{%- if cookiecutter.broadcast %}
    # Bearer token for POST /api/broadcast; None refuses every request.
    "BROADCAST_TOKEN": None,
    # Messages queued per client before a slow client is cut off.
    "BROADCAST_QUEUE_SIZE": 100,
    # Messages a client may send per second on /ws/broadcast and room
    # sockets, with bursts up to MESSAGE_BURST; past it: close 1008.
    "MESSAGES_PER_SECOND": 20,
    "MESSAGE_BURST": 40,
    # Each room keeps its last messages for clients that resume: at most this
    # many, this many seconds, and this many bytes of frames.
    "ROOM_HISTORY": 100,
    "ROOM_HISTORY_SECONDS": 300,
    "ROOM_HISTORY_BYTES": 1024 * 1024,
{%- endif %}
{%- if cookiecutter.users %}
    # Signs sessions and tickets (users/identity.py); the app refuses to start
    # without it, except under DEMO_LOGIN (a random key for that run).
    "SECRET_KEY": None,
    # Bearer token that acts as the server towards users: tickets for any
    # user, inbox messages from the server, presence, disconnects. None: off.
    "ANY_USER_TOKEN": None,
    # Seconds a ticket from POST /api/tickets stays valid for a handshake.
    "TICKET_SECONDS": 60,
    # Seconds after which a process that stopped renewing its presence
    # entries (killed) has its users leave.
    "PRESENCE_TTL": 30,
    # Open websockets of one user on this process; past it a handshake gets 429.
    "CONNECTIONS_PER_USER": 10,
    # Open websockets without a user (the echo, /ws) on this process, within
    # MAX_CONNECTIONS: the rest is kept for users. Past it: 503. None: a quarter.
    "ANONYMOUS_CONNECTIONS": None,
    # What one user may publish on this process, over all their sockets and
    # HTTP posts: messages a second (bursts up to USER_MESSAGE_BURST) and bytes
    # a second (one message of MAX_MESSAGE_SIZE always fits). Past it: a socket
    # is closed with 1008, a POST gets 429.
    "USER_MESSAGES_PER_SECOND": 5,
    "USER_MESSAGE_BURST": 20,
    "USER_BYTES_PER_SECOND": 64 * 1024,
    # Seconds between checks that each open socket's session is not revoked
    # (a logout closes them at once; this catches what that missed).
    "SESSION_CHECK_SECONDS": 60,
    # GET/POST /login take any name: for trying the app, never in production.
    "DEMO_LOGIN": False,
{%- endif %}
{%- if cookiecutter.broadcast_backend == "redis" %}
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "REDIS_CHANNEL": "{{ cookiecutter.package_name }}:broadcast",
    # A Redis Cluster (1) or one Redis (0); unset: asked of the server at start.
    "REDIS_CLUSTER": None,
{%- endif %}
}
# Every setting whose default is a number is a count, a size or seconds: above zero.
POSITIVE_INTS = [key for key, value in DEFAULTS.items() if type(value) is int]
# Every setting whose default is a boolean, and those that may also stay unset.
BOOLEANS = [key for key, value in DEFAULTS.items() if type(value) is bool]
OPTIONAL_BOOLEANS: list[str] = [{% if cookiecutter.broadcast_backend == "redis" %}"REDIS_CLUSTER"{% endif %}]
# What a boolean variable may say, in any case; anything else stops the app.
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}


def load_config(app: Quart, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config`` and check it, so that a bad value fails at start-up.

    The one place settings are checked: every bad value is named, one per line.
    """
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env()  # QUART_<NAME>=... becomes app.config["<NAME>"]
    app.config.update(overrides or {})
    problems = [problem for key in POSITIVE_INTS if (problem := not_positive(app.config, key))]
    for key in BOOLEANS + OPTIONAL_BOOLEANS:
        app.config[key], problem = as_boolean(key, app.config[key], key in OPTIONAL_BOOLEANS)
        problems += [problem] if problem else []
    if problems:
        raise ValueError("\n".join(problems))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_MESSAGE_SIZE"]  # POST bodies too
    app.config["ALLOWED_ORIGINS"] = origin_set(app.config["ALLOWED_ORIGINS"])


def not_positive(config: Mapping[str, Any], key: str) -> str | None:
    """What is wrong with ``config[key]`` if it is not an int above zero, naming the variable."""
    value = config[key]
    if type(value) is not int or value <= 0:
        return f"QUART_{key} must be a positive integer, got {value!r}"
    return None


def as_boolean(key: str, value: object, optional: bool) -> tuple[bool | None, str | None]:
    """``value`` as a boolean, or what is wrong with it, naming the variable.

    ``from_prefixed_env`` reads ``false`` and ``0`` as JSON but keeps ``False``
    or ``no`` as a (truthy) string: each is read here, and a typo stops the app.
    """
    if value is None and optional:
        return None, None
    if type(value) is bool:
        return value, None
    word = str(value).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS, None
    return None, f"QUART_{key} must be true/false, 1/0, yes/no or on/off, got {value!r}"


def origin_set(value: str | list[str] | frozenset[str]) -> frozenset[str]:
    """Parse origins given as a list or as a comma or space separated string."""
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    return frozenset(item.strip().rstrip("/").lower() for item in items)
