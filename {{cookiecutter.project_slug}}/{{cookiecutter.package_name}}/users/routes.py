"""The inbox socket and the HTTP API of users: tickets, direct messages, presence."""

from __future__ import annotations

import json
from contextlib import nullcontext
from typing import Any

from quart import Blueprint, Response, abort, current_app, redirect, request, websocket
from quart.typing import ResponseReturnValue
from quart_auth import logout_user

from ..broadcast.broker import BroadcastUnavailable
from ..broadcast.flood import OverQuota
from ..broadcast.rooms import FrameTooBig, check_room_name
from ..broadcast.routes import UNSUPPORTED_DATA, serve_topic
from ..messages import incoming_messages
from ..sockets import current_socket
from ..tokens import refuse_without_token
from .api import INBOX, revoke_user, send_to_user
from .identity import (
    BadCredential,
    bearer,
    check_user_id,
    credential,
    current_tickets,
    presented,
    session_user,
    user_of,
)
from .presence import current_presence

blueprint = Blueprint("users", __name__, template_folder="templates")

SERVER = ""  # the caller that showed the token that acts for any user (QUART_ANY_USER_TOKEN)
NO_CREDENTIAL = {"error": "send QUART_ANY_USER_TOKEN, a ticket, or a session cookie"}


@blueprint.websocket("/ws/inbox")
async def inbox_socket() -> ResponseReturnValue | None:
    """This user's own messages, from every process; ``?since=<id>`` resumes."""
    user = user_of(current_socket())
    return await serve_topic(INBOX + user, nullcontext([]), refuse_input)


async def refuse_input() -> None:
    async for _ in incoming_messages():
        await websocket.close(UNSUPPORTED_DATA, "the inbox only receives: POST to send")
        return


async def caller(users_too: bool = True) -> str:
    """``SERVER``, or the user id of the credential (if ``users_too``); else abort with 401.

    Only ``QUART_ANY_USER_TOKEN`` is ``SERVER``: the broadcast token posts
    broadcasts and room messages, nothing more.
    """
    token = current_app.config["ANY_USER_TOKEN"]
    if bearer() is not None and token and refuse_without_token(str(token)) is None:
        return SERVER
    refusal = NO_CREDENTIAL
    if users_too:
        try:
            found = await credential()
        except BadCredential as error:
            found, refusal = None, {"error": str(error)}
        except BroadcastUnavailable as error:
            abort(Response(json.dumps({"error": str(error)}), 503, content_type="application/json"))
        if found is not None:
            return found.user
    headers = {"WWW-Authenticate": "Bearer"}
    abort(Response(json.dumps(refusal), 401, headers, content_type="application/json"))


@blueprint.post("/api/tickets")
async def post_ticket() -> ResponseReturnValue:
    """A ticket for the session's user, or with the any-user token for ``{"user": id}``."""
    try:
        user = await session_user()
    except BroadcastUnavailable as error:
        return {"error": str(error)}, 503
    if user is None:
        await caller(users_too=False)  # the any-user token, or 401
        body = await request.get_json(silent=True)
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or check_user_id(user) is not None:
            return {"error": 'send {"user": "<id>"}: 1-64 of A-Z a-z 0-9 . _ -'}, 400
    tickets = current_tickets()
    return {"ticket": tickets.issue(user), "expires_in": tickets.seconds}


@blueprint.post("/api/users/<user>/messages")
async def post_user_message(user: str) -> ResponseReturnValue:
    """Send the body (UTF-8 text) to the user's inbox; ``from`` is the caller."""
    who = await caller()
    problem = check_user_id(user)
    if problem is not None:
        return {"error": problem}, 400
    try:
        text = (await request.body).decode("utf-8")
    except UnicodeDecodeError:
        return {"error": "body is not UTF-8 text: inboxes carry text"}, 400
    try:
        message_id = await send_to_user(user, text, sender=who or None)
    except BroadcastUnavailable as error:
        return {"error": str(error)}, 503
    except FrameTooBig as error:
        return {"error": f"message too big: {error}"}, 413
    except OverQuota as error:
        return {"error": str(error)}, 429, {"Retry-After": "1"}
    body: dict[str, Any] = {"user": user, "id": message_id}
    return body, 201


@blueprint.delete("/api/users/<user>/connections")
async def delete_user_connections(user: str) -> ResponseReturnValue:
    """Close every websocket of the user, everywhere, and end their sessions (any-user token)."""
    await caller(users_too=False)  # the any-user token, or 401
    problem = check_user_id(user)
    if problem is not None:
        return {"error": problem}, 400
    try:
        await revoke_user(user, "disconnected by the server")
    except BroadcastUnavailable as error:
        return {"error": str(error)}, 503
    return "", 204


@blueprint.get("/api/rooms/<room>/presence")
async def get_presence(room: str) -> ResponseReturnValue:
    """Who is in the room, on every process: for its members and the any-user token."""
    who = await caller()  # the any-user token or a user's credential, or 401
    problem = check_room_name(room)
    if problem is not None:
        return {"error": problem}, 400
    try:
        users = await current_presence().store.users(room)
    except BroadcastUnavailable as error:
        return {"error": str(error)}, 503
    if who != SERVER and who not in users:
        return {"error": "only the room's members see who is in it"}, 403
    return {"room": room, "users": users}


@blueprint.post("/logout")
async def logout() -> ResponseReturnValue:
    """End every session and ticket of this user, everywhere, and close their sockets."""
    try:
        found = await presented()  # revoked or not: a second logout does no harm
    except BadCredential:
        found = None
    logout_user()
    if found is not None:
        try:
            await revoke_user(found.user)
        except BroadcastUnavailable as error:  # the cookie is gone here, not elsewhere
            return {"error": f"logged out here only: {error}"}, 503
    return redirect("/", 303)
