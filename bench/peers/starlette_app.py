"""Starlette, as its docs would have it: run with ``uvicorn bench.peers.starlette_app:app``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

subscribers: set[WebSocket] = set()


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await ws.send_text(message["text"])
        else:
            await ws.send_bytes(message["bytes"])


async def fan_out(ws: WebSocket) -> None:
    await ws.accept()
    subscribers.add(ws)
    try:
        while True:
            text = await ws.receive_text()
            for subscriber in list(subscribers):
                await subscriber.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        subscribers.discard(ws)


app = Starlette(routes=[WebSocketRoute("/ws", echo), WebSocketRoute("/ws/broadcast", fan_out)])
