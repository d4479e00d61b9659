"""Bare ``websockets`` (asyncio): the baseline. Same routes as the generated app."""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

subscribers: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    if ws.request is not None and ws.request.path == "/ws/broadcast":
        subscribers.add(ws)
        try:
            async for message in ws:
                broadcast(subscribers, message)
        finally:
            subscribers.discard(ws)
    else:
        async for message in ws:
            await ws.send(message)


async def main(port: int) -> None:
    async with serve(
        handler, "127.0.0.1", port, compression=None, max_size=2**20, ping_interval=None
    ):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
