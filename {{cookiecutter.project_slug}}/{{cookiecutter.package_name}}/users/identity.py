"""Who is at the other end: a session cookie or a ticket, read at the handshake.

Two ways in, both signed with ``QUART_SECRET_KEY``:

- a browser sends its session cookie, set by the login (quart-auth);
- any other client sends a ticket in the handshake's
  ``Authorization: Bearer <ticket>`` header: a signed string naming one user,
  valid for ``QUART_TICKET_SECONDS`` (``POST /api/tickets`` issues them). A
  socket outlives its ticket. Tickets never go into a URL: URLs end up in
  access logs.

``/ws/broadcast``, the room sockets and ``/ws/inbox`` need a user: without
one the handshake is refused with 401 before accept; past
``QUART_CONNECTIONS_PER_USER`` open sockets of one user on this process, 429.
"""

from __future__ import annotations

import re

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from quart import current_app, g, has_websocket_context, request, websocket
from quart.typing import ResponseReturnValue
from quart_auth import current_user

from ..broadcast.api import current_broker
from ..broadcast.broker import BroadcastUnavailable
from ..broadcast.hub import Subscriber
from ..metrics import current_metrics
from ..sockets import OpenSocket, current_socket
from ..tokens import bearer_token

USER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # the room name rule
NEEDS_A_USER = {"broadcast.broadcast_socket", "broadcast.room_socket", "users.inbox_socket"}
USER_LINE = "!"  # topic prefix: "!alice" reaches every socket of alice
DISCONNECTED = 4001  # the close code of disconnect_user
TOO_MANY = 429


class BadTicket(ValueError):
    """A ticket that is tampered with, signed with another key, or expired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # the metrics label


class Tickets:
    """Signs and reads tickets: ``<user>.<timestamp>.<signature>`` (itsdangerous)."""

    def __init__(self, secret_key: str | bytes, seconds: int) -> None:
        self.signer = TimestampSigner(secret_key, salt="websocket-ticket")
        self.seconds = seconds

    def issue(self, user: str) -> str:
        return self.signer.sign(user).decode()

    def read(self, ticket: str) -> str:
        """The user a valid ticket names; ``BadTicket`` otherwise."""
        try:
            return self.signer.unsign(ticket, max_age=self.seconds).decode()
        except SignatureExpired as error:
            raise BadTicket("expired_ticket", "the ticket has expired: get a new one") from error
        except BadSignature as error:
            raise BadTicket("bad_ticket", "the ticket is not valid") from error


def current_tickets() -> Tickets:
    """The app's tickets, signed with its current key."""
    return Tickets(current_app.secret_key or "", current_app.config["TICKET_SECONDS"])


def check_user_id(user: str) -> str | None:
    """None for a valid user id, else why it is not."""
    if USER_ID.fullmatch(user):
        return None
    return "a user id is 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'"


def bearer() -> str | None:
    """The request's or handshake's bearer credential, if it has one."""
    return bearer_token(websocket.headers if has_websocket_context() else request.headers)


async def session_user() -> str | None:
    """The user of the session cookie, if it is valid."""
    if await current_user.is_authenticated:
        return current_user.auth_id
    return None


async def credential_user() -> str | None:
    """The user named by a ticket, else by the session; ``BadTicket`` for a bad ticket."""
    ticket = bearer()
    if ticket is not None:
        return current_tickets().read(ticket)
    return await session_user()


class UserLine(Subscriber):
    """Subscribed to ``!<user>`` for the life of one socket: ``disconnect_user`` ends it."""

    __slots__ = ()

    def offer(self, message: object) -> bool:
        self.socket.end(DISCONNECTED, str(getattr(message, "frame", "disconnected")))
        return True

    def close(self) -> None:
        """Nothing queued: the line only ever ends the socket."""


async def require_user() -> ResponseReturnValue | None:
    """A ``before_websocket`` hook: refuse, before accept, a handshake without a user."""
    if websocket.endpoint not in NEEDS_A_USER:
        return None
    try:
        user = await credential_user()
    except BadTicket as error:
        return refuse(error.reason, str(error), 401)
    if user is None:
        message = "log in, or send Authorization: Bearer <ticket> (from POST /api/tickets)"
        return refuse("no_credential", message, 401)
    hub = current_broker().hub
    limit = current_app.config["CONNECTIONS_PER_USER"]
    if hub.subscriber_count(USER_LINE + user) >= limit:
        return refuse("per_user_cap", f"{user!r} has {limit} open websockets already", TOO_MANY)
    sock = current_socket()
    sock.user = user
    g.user_line = hub.add(UserLine(USER_LINE + user, sock))  # counted at once: the cap
    try:
        await current_broker().follow(USER_LINE + user)
    except BroadcastUnavailable as error:
        return {"error": str(error)}, 503  # release_user drops the line
    return None


def refuse(reason: str, message: str, status: int) -> ResponseReturnValue:
    current_metrics().handshakes_refused.labels(reason).inc()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return {"error": message}, status, headers


async def release_user(error: BaseException | None) -> None:
    """A ``teardown_websocket`` hook: the socket no longer counts for its user."""
    line = g.pop("user_line", None)
    if line is not None:
        current_broker().hub.remove(line)


def user_of(sock: OpenSocket) -> str:
    """The user of a socket that ``require_user`` let in."""
    if sock.user is None:
        raise RuntimeError("this websocket has no user: is its route in NEEDS_A_USER?")
    return sock.user
