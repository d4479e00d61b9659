"""The broadcast and room websockets, and their authenticated POST endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack{% if not cookiecutter.users %}, nullcontext{% endif %}
from functools import partial
from typing import Any

from quart import Blueprint, current_app, request, websocket
from quart.typing import ResponseReturnValue

from ..messages import MESSAGE_TOO_BIG, Message
from ..metrics import current_metrics, route_label
from ..sockets import current_socket, nothing_to_send
from ..tokens import refuse_without_token
from .api import broadcast, current_broker
from .broker import BroadcastUnavailable, Broker
from .flood import POLICY_VIOLATION, OverQuota, rate_limited_messages
from .heartbeat import Beat
from .hub import EVERYONE, TRY_AGAIN_LATER
from .outbox import Outbox, Send
from .rooms import (
    BadResume,
    FrameTooBig,
    MessageKey,
    Notice,
    RoomMessage,
    check_room_name,
    message_key,
    missed_frame,
    replay_after,
)

UNSUPPORTED_DATA = 1003

blueprint = Blueprint("broadcast", __name__, template_folder="templates")


@blueprint.websocket("/ws/broadcast")
async def broadcast_socket() -> None:
    """Broadcast what this client sends; send it everything broadcast."""
    hub = current_broker().hub
    with hub.subscribe(Outbox(EVERYONE, current_socket(), hub.queue_size)) as outbox:
        await websocket.accept()
        outbox.open(outbox.socket.send_data, current_metrics().messages_sent.labels(route_label()))
        async for message in rate_limited_messages():
            try:
                await broadcast(message, sender=current_socket().user)
            except BroadcastUnavailable:
                # Never drop a message silently: the client learns, and retries.
                await websocket.close(TRY_AGAIN_LATER, "broadcast unavailable")
                return
            except OverQuota as error:
                current_metrics().closed.labels("flood").inc()
                await websocket.close(POLICY_VIOLATION, str(error))
                return


@blueprint.websocket("/ws/rooms/<room>")
async def room_socket(room: str) -> ResponseReturnValue | None:
    """Join ``room``: replay what was missed since ``?since=<id>``, then live messages."""
    problem = check_room_name(room)
    if problem is not None:
        current_metrics().handshakes_refused.labels("bad_room").inc()
        return {"error": problem}, 400  # before accept: the handshake fails
{%- if cookiecutter.users %}
    # users/presence.py: the room's list first, then who comes and goes.
    joined: AbstractAsyncContextManager[list[str]]
    joined = current_app.extensions["presence"].joined(room, current_socket())
{%- else %}
    joined: AbstractAsyncContextManager[list[str]] = nullcontext([])
{%- endif %}
    return await serve_topic(room, joined, partial(publish_what_arrives, room))


async def serve_topic(
    topic: str, joined: AbstractAsyncContextManager[list[str]], read: Callable[[], Awaitable[None]]
) -> ResponseReturnValue | None:
    """Serve one socket of a room-like topic until ``read`` returns.

    Before accept, so that a failure refuses the handshake (400, 503): the
    topic followed (with Redis, its channel) then the hub subscribed, the
    history read for ``?since=`` (no gap), ``joined`` entered. After accept:
    the frames ``joined`` gives, the ``missed`` notice and the replay, then
    live messages.
    """
    since = websocket.args.get("since")
    broker = current_broker()
    async with AsyncExitStack() as stack:
        try:
            await broker.follow(topic)  # no await from here to the hub's subscription
            outbox = Outbox(topic, current_socket(), broker.hub.queue_size)
            stack.enter_context(broker.hub.subscribe(outbox))
            replay, missed = await missed_since(broker, topic, since)
            first_frames = await stack.enter_async_context(joined)
        except BadResume as error:
            current_metrics().handshakes_refused.labels("bad_since").inc()
            return {"error": str(error)}, 400
        except BroadcastUnavailable as error:
            return {"error": str(error)}, 503
        await websocket.accept()
        for frame in first_frames:
            await websocket.send(frame)
        if missed:
            await websocket.send(missed_frame(topic, since or ""))
        for message in replay:
            await websocket.send(message.frame)
        seen = replay[-1].key if replay else message_key(since) if since else None
        sent = current_metrics().messages_sent.labels(route_label())
        outbox.open(live_sender(outbox.socket.send_data, seen), sent)
        await read()
    return None


async def missed_since(
    broker: Broker, topic: str, since: str | None
) -> tuple[list[RoomMessage], bool]:
    """The messages after ``since`` to replay, and whether some were already gone."""
    if since is None:
        return [], False
    return replay_after(await broker.room_history(topic), since)


def live_sender(send: Send, seen: MessageKey | None) -> Send:
    """``send`` live frames, skipping messages up to ``seen`` (replayed)."""
    floor = seen or (-1, -1)

    def send_live(message: RoomMessage | Notice | Beat) -> Coroutine[Any, Any, None]:
        if isinstance(message, RoomMessage) and message.key <= floor:
            return nothing_to_send()
        return send(message.frame)

    return send_live


async def publish_what_arrives(room: str) -> None:
    async for message in rate_limited_messages():
        if not isinstance(message, str):
            await websocket.close(UNSUPPORTED_DATA, "rooms carry text frames only")
            return
        try:
            await broadcast(message, room=room, sender=current_socket().user)
        except BroadcastUnavailable:
            await websocket.close(TRY_AGAIN_LATER, "broadcast unavailable")
            return
        except FrameTooBig as error:
            current_metrics().closed.labels("too_big").inc()
            await websocket.close(MESSAGE_TOO_BIG, str(error)[:120])  # a reason fits 123 bytes
            return
        except OverQuota as error:
            current_metrics().closed.labels("flood").inc()
            await websocket.close(POLICY_VIOLATION, str(error))
            return


@blueprint.post("/api/broadcast")
async def post_broadcast() -> ResponseReturnValue:
    """Broadcast the request body: text, or bytes if sent as octet-stream."""
    refusal = check_bearer_token()
    if refusal is not None:
        return refusal
    body = await request.body
    message: Message = body
    if request.mimetype != "application/octet-stream":
        try:
            message = body.decode("utf-8")
        except UnicodeDecodeError:
            return {"error": "body is not UTF-8 text; send bytes as application/octet-stream"}, 400
    try:
        await broadcast(message)
    except BroadcastUnavailable as error:
        return {"error": str(error)}, 503
    return "", 204


@blueprint.post("/api/rooms/<room>/messages")
async def post_room_message(room: str) -> ResponseReturnValue:
    """Send the request body (UTF-8 text) to one room; answer its id."""
    refusal = check_bearer_token()
    if refusal is not None:
        return refusal
    problem = check_room_name(room)
    if problem is not None:
        return {"error": problem}, 400
    try:
        text = (await request.body).decode("utf-8")
    except UnicodeDecodeError:
        return {"error": "body is not UTF-8 text: rooms carry text"}, 400
    try:
        message_id = await broadcast(text, room=room)
    except BroadcastUnavailable as error:
        return {"error": str(error)}, 503
    except FrameTooBig as error:
        return {"error": f"message too big: {error}"}, 413
    body: dict[str, Any] = {"room": room, "id": message_id}
    return body, 201


def check_bearer_token() -> ResponseReturnValue | None:
    """None if the request carries the configured token, else the refusal."""
    expected = current_app.config["BROADCAST_TOKEN"]
    if expected is None or expected == "":
        return {"error": "broadcasting over HTTP is off: set QUART_BROADCAST_TOKEN"}, 403
    return refuse_without_token(str(expected))
