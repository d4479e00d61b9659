"""Who is at the other end: a session cookie or a ticket, read at the handshake.

Two ways in, both signed with ``QUART_SECRET_KEY``:

- a browser sends its session cookie, set by the login (quart-auth);
- any other client sends a ticket in the handshake's
  ``Authorization: Bearer <ticket>`` header: a signed string naming one user,
  valid for ``QUART_TICKET_SECONDS`` (``POST /api/tickets`` issues them) and
  for one socket: a ticket that opened a socket opens no other. A socket
  outlives its ticket. Tickets never go into a URL: URLs end up in access logs.

Both carry when they were issued (``<user>:<ms>``): a logout revokes every
session and ticket of its user issued before it (``sessions_*.py``), checked
at each handshake and call, and every ``QUART_SESSION_CHECK_SECONDS`` for the
sockets already open.

``/ws/broadcast``, the room sockets and ``/ws/inbox`` need a user: without
one the handshake is refused with 401 before accept; past
``QUART_CONNECTIONS_PER_USER`` open sockets of one user on this process, 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from quart import Quart, current_app, g, has_websocket_context, request, websocket
from quart.typing import ResponseReturnValue
from quart_auth import AuthUser, current_user, login_user

from ..broadcast.api import current_broker
from ..broadcast.broker import BroadcastUnavailable
from ..broadcast.hub import Hub, Subscriber
from ..metrics import current_metrics
from ..sockets import OpenSocket, current_socket
from ..tokens import bearer_token
{%- if cookiecutter.broadcast_backend == "redis" %}
from .sessions_redis import Sessions, now_ms
{%- else %}
from .sessions_memory import Sessions, now_ms
{%- endif %}

log = logging.getLogger(__name__)

USER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # the room name rule
NOT_NAMES = {".", ".."}  # path segments, not names: a URL with them is rewritten
NEEDS_A_USER = {"broadcast.broadcast_socket", "broadcast.room_socket", "users.inbox_socket"}
USER_LINE = "!"  # topic prefix: "!alice" reaches every socket of alice
DISCONNECTED = 4001  # the close code of disconnect_user and of a revoked session
TOO_MANY = 429
MIN_SECRET_KEY = 32  # characters: secrets.token_urlsafe(32) makes 43


class BadCredential(ValueError):
    """A ticket tampered with, signed with another key, expired or spent; or revoked."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # the metrics label


@dataclass(frozen=True, slots=True)
class Credential:
    """Who a session or ticket names, and when it was issued (ms since the epoch)."""

    user: str
    issued: int
    ticket: str | None = None  # what a ticket signs, if it came as one: spent once

    @classmethod
    def parse(cls, signed: str, ticket: str | None = None) -> Credential:
        """``<user>:<ms>[:<nonce>]``; a bare user id (a login of your own) is issued at 0."""
        user, _, rest = signed.partition(":")
        issued = rest.partition(":")[0]
        return cls(user, int(issued) if issued.isdigit() else 0, ticket)


class Tickets:
    """Signs and reads tickets: ``<user>:<ms>:<nonce>.<timestamp>.<signature>`` (itsdangerous)."""

    def __init__(self, secret_key: str | bytes | None, seconds: int) -> None:
        if not secret_key or len(secret_key) < MIN_SECRET_KEY:
            raise RuntimeError(f"QUART_SECRET_KEY is unset or shorter than {MIN_SECRET_KEY}")
        self.signer = TimestampSigner(secret_key, salt="websocket-ticket")
        self.seconds = seconds

    def issue(self, user: str) -> str:
        # A nonce: two tickets of one user in one millisecond are still two.
        return self.signer.sign(f"{user}:{now_ms()}:{secrets.token_urlsafe(6)}").decode()

    def read(self, ticket: str) -> Credential:
        """The credential of a valid ticket; ``BadCredential`` otherwise."""
        try:
            signed = self.signer.unsign(ticket, max_age=self.seconds).decode()
        except SignatureExpired as error:
            message = "the ticket has expired: get a new one"
            raise BadCredential("expired_ticket", message) from error
        except BadSignature as error:
            raise BadCredential("bad_ticket", "the ticket is not valid") from error
        # Spent by what it signs (user, time, nonce): the signature's text has
        # other spellings that itsdangerous accepts as the same.
        return Credential.parse(signed, ticket=signed)


def current_tickets() -> Tickets:
    """The app's tickets, signed with its current key (never an empty or short one)."""
    return Tickets(current_app.secret_key, current_app.config["TICKET_SECONDS"])


def current_sessions() -> Sessions:
    sessions: Sessions = current_app.extensions["sessions"]
    return sessions


def log_in(user: str) -> None:
    """Set the session cookie of ``user``: what your own login ends with.

    ``ValueError`` for an id outside the room name rule (``check_user_id``).
    """
    problem = check_user_id(user)
    if problem is not None:
        raise ValueError(problem)
    login_user(AuthUser(f"{user}:{now_ms()}"))


def check_user_id(user: str) -> str | None:
    """None for a valid user id, else why it is not."""
    if USER_ID.fullmatch(user) and user not in NOT_NAMES:
        return None
    return "a user id is 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not . or .."


def bearer() -> str | None:
    """The request's or handshake's bearer credential, if it has one."""
    return bearer_token(websocket.headers if has_websocket_context() else request.headers)


async def presented() -> Credential | None:
    """A ticket's credential, else the session cookie's: signed and in date, maybe revoked."""
    ticket = bearer()
    if ticket is not None:
        return current_tickets().read(ticket)
    if await current_user.is_authenticated and current_user.auth_id is not None:
        return Credential.parse(current_user.auth_id)
    return None


async def credential() -> Credential | None:
    """The credential presented, unless revoked or spent; ``BadCredential`` for a bad one."""
    found = await presented()
    if found is None:
        return None
    if found.ticket is not None and await current_sessions().spent(found.ticket):
        raise BadCredential("spent_ticket", "the ticket has opened a socket: get a new one")
    return await unrevoked(found)


async def session_user() -> str | None:
    """The user of the session cookie, if it is valid and not revoked."""
    if bearer() is not None:
        return None
    with contextlib.suppress(BadCredential):
        found = await credential()
        return found.user if found else None
    return None


async def unrevoked(found: Credential) -> Credential:
    """``found``, unless a logout since revoked it (``BadCredential``)."""
    if found.issued < await current_sessions().not_before(found.user):
        raise BadCredential("revoked", "this session has ended: log in again")
    return found


class UserLine(Subscriber):
    """Subscribed to ``!<user>`` for the life of one socket: ``disconnect_user`` ends it."""

    __slots__ = ("issued",)

    def __init__(self, topic: str, socket: OpenSocket, issued: int) -> None:
        super().__init__(topic, socket)
        self.issued = issued  # when the socket's credential was issued

    def offer(self, message: object) -> bool:
        self.socket.end(DISCONNECTED, str(getattr(message, "frame", "disconnected")))
        return True

    def close(self) -> None:
        """Nothing queued: the line only ever ends the socket."""


async def require_user() -> ResponseReturnValue | None:
    """A ``before_websocket`` hook: refuse, before accept, a handshake without a user."""
    if websocket.endpoint not in NEEDS_A_USER:
        anonymous: AnonymousCap = current_app.extensions["anonymous_cap"]
        return anonymous.enter()
    try:
        found = await presented()
    except BadCredential as error:
        return refuse(error.reason, str(error), 401)
    if found is None:
        message = "log in, or send Authorization: Bearer <ticket> (from POST /api/tickets)"
        return refuse("no_credential", message, 401)
    user = found.user
    hub = current_broker().hub
    limit = current_app.config["CONNECTIONS_PER_USER"]
    if hub.subscriber_count(USER_LINE + user) >= limit:
        return refuse("per_user_cap", f"{user!r} has {limit} open websockets already", TOO_MANY)
    sock = current_socket()
    sock.user = user
    # Counted at once, before any await: the cap holds for handshakes in flight.
    g.user_line = hub.add(UserLine(USER_LINE + user, sock, found.issued))
    try:  # release_user drops the line of a refused handshake
        # Followed first: a logout from now on reaches this socket's line.
        await current_broker().follow(USER_LINE + user)
        await unrevoked(found)
        if found.ticket is not None:
            await spend(found.ticket)
    except BadCredential as error:
        return refuse(error.reason, str(error), 401)
    except BroadcastUnavailable as error:
        return {"error": str(error)}, 503
    return None


async def spend(ticket: str) -> None:
    """Spend a ticket on this socket; ``BadCredential`` if it opened one before."""
    if not await current_sessions().spend(ticket):
        raise BadCredential("spent_ticket", "the ticket has opened a socket: get a new one")


def refuse(reason: str, message: str, status: int) -> ResponseReturnValue:
    current_metrics().handshakes_refused.labels(reason).inc()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {"Retry-After": "5"}
    return {"error": message}, status, headers


async def release_user(error: BaseException | None) -> None:
    """A ``teardown_websocket`` hook: the socket no longer counts for its user."""
    line = g.pop("user_line", None)
    if line is not None:
        current_broker().hub.remove(line)
    anonymous = g.pop("anonymous_cap", None)
    if anonymous is not None:
        anonymous.open -= 1


class AnonymousCap:
    """Open websockets that need no user (the echo), at most ``QUART_ANONYMOUS_CONNECTIONS``.

    They count within ``QUART_MAX_CONNECTIONS`` too, which keeps the rest for
    users: a flood of anonymous sockets cannot lock them out.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def enter(self) -> ResponseReturnValue | None:
        if self.open >= self.limit:
            message = "too many open websockets without a user: retry later"
            return refuse("anonymous_cap", message, 503)
        self.open += 1
        g.anonymous_cap = self
        return None


def user_of(sock: OpenSocket) -> str:
    """The user of a socket that ``require_user`` let in."""
    if sock.user is None:
        raise RuntimeError("this websocket has no user: is its route in NEEDS_A_USER?")
    return sock.user


class SessionCheck:
    """Every ``interval`` seconds, end the open sockets whose session was revoked since.

    A logout closes its user's sockets at once, through ``disconnect_user``;
    this catches what that notice missed (Redis down at the time, a process
    that was stalled), so no revoked credential keeps a socket longer.
    """

    def __init__(self, hub: Hub, sessions: Sessions, interval: int) -> None:
        self.hub, self.sessions, self.interval = hub, sessions, interval
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except BroadcastUnavailable as error:
                log.warning("open sessions not checked: %s", error)

    async def check(self) -> None:
        for topic in [topic for topic in self.hub.topics if topic.startswith(USER_LINE)]:
            not_before = await self.sessions.not_before(topic[len(USER_LINE) :])
            for line in tuple(self.hub.topics.get(topic, ())):
                if isinstance(line, UserLine) and line.issued < not_before:
                    line.socket.end(DISCONNECTED, "this session has ended: log in again")


def init_sessions(app: Quart, sessions: Sessions) -> None:
    """Keep the app's sessions, and check the open sockets' every so often."""
    app.extensions["sessions"] = sessions
    hub = app.extensions["broker"].hub
    check = SessionCheck(hub, sessions, app.config["SESSION_CHECK_SECONDS"])
    app.before_serving(check.start)
    app.after_serving(check.stop)
