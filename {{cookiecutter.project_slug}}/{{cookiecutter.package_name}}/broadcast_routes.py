"""The broadcast websocket and the authenticated POST endpoint."""

from __future__ import annotations

import asyncio
import hmac

from quart import Blueprint, current_app, request, websocket
from quart.typing import ResponseReturnValue

from .broadcast import TRY_AGAIN_LATER, broadcast, collect_websocket
from .hub import BroadcastUnavailable
from .messages import Message, incoming_messages

blueprint = Blueprint("broadcast", __name__)


@blueprint.websocket("/ws/broadcast")
@collect_websocket
async def broadcast_socket(queue: asyncio.Queue[Message]) -> None:
    """Broadcast what this client sends; send it everything broadcast."""
    sender = asyncio.create_task(send_all(queue))
    try:
        async for message in incoming_messages():
            try:
                await broadcast(message)
            except BroadcastUnavailable:
                # Never drop a message silently: the client learns, and retries.
                await websocket.close(TRY_AGAIN_LATER, "broadcast unavailable")
                return
    finally:
        sender.cancel()


async def send_all(queue: asyncio.Queue[Message]) -> None:
    send = websocket.send  # look the context-local proxy up once, not per message
    while True:
        await send(await queue.get())


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


def check_bearer_token() -> ResponseReturnValue | None:
    """None if the request carries the configured token, else the refusal."""
    expected = current_app.config["BROADCAST_TOKEN"]
    if expected is None or expected == "":
        return {"error": "broadcasting over HTTP is off: set QUART_BROADCAST_TOKEN"}, 403
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), str(expected).encode()
    ):
        return {"error": "missing or wrong bearer token"}, 401, {"WWW-Authenticate": "Bearer"}
    return None
