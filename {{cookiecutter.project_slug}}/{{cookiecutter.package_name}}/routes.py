"""The page, the health check and the echo websocket."""

from __future__ import annotations

from quart import Blueprint, abort, current_app, render_template, request, websocket
from quart.typing import ResponseReturnValue

from .messages import incoming_messages

blueprint = Blueprint("core", __name__)


@blueprint.get("/")
async def index() -> str:
    """The chat page; ``?channel=<name>`` picks which websocket it talks to."""
    channels: dict[str, str | None] = current_app.extensions["channels"]
    channel = request.args.get("channel", "echo")
    if channel not in channels:
        abort(404)
    return await render_template(
        "index.html",
        title=current_app.config["TITLE"],
        channels=channels,
        channel=channel,
        page_parts=current_app.extensions["page_parts"],
    )


@blueprint.get("/healthz")
async def healthz() -> ResponseReturnValue:
    """200 while every registered health check is up, 503 otherwise (for load balancers)."""
    checks = {name: check() for name, check in current_app.extensions["health_checks"].items()}
    healthy = all(state == "up" for state in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return body, 200 if healthy else 503


@blueprint.websocket("/ws")
async def echo() -> None:
    """Send every message back unchanged: text as text, bytes as bytes."""
    async for message in incoming_messages():
        await websocket.send(message)
