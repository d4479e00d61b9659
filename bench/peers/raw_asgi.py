"""A raw ASGI app, no framework: what the server alone costs for echo and fan-out.

Served by the same server, with the same settings, as the template's app, it is
the row that shows what Quart and the template add over their server.
"""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]
subscribers: set[Any] = set()  # the send callables of /ws/broadcast


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    fan_out = scope["path"] == "/ws/broadcast"
    if fan_out:
        subscribers.add(send)
    try:
        while (event := await receive())["type"] == "websocket.receive":
            text, data = event.get("text"), event.get("bytes")
            reply = {"type": "websocket.send", "text": text, "bytes": data}
            for target in list(subscribers) if fan_out else [send]:
                await target(reply)
    finally:
        subscribers.discard(send)
