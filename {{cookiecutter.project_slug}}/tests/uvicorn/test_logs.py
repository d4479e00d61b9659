"""The production server's log under a ramp of sockets: one access line each, no more."""

from __future__ import annotations

import asyncio
import tempfile
import time

from websockets.asyncio.client import connect

from ..servers import run_server

SOCKETS = 40


async def test_a_ramp_of_sockets_logs_each_client_once_and_the_rest_once_a_second() -> None:
    with tempfile.TemporaryFile() as log:
        with run_server(server="uvicorn", log=log) as live:
            started = time.monotonic()
            clients = [connect(f"{live.ws_url}/ws") for _ in range(SOCKETS)]
            sockets = await asyncio.gather(*(client.__aenter__() for client in clients))
            await asyncio.gather(*(ws.close() for ws in sockets))
            seconds = time.monotonic() - started
            await asyncio.sleep(1.1)  # the next line lets through carries the count
            async with connect(f"{live.ws_url}/ws"):
                pass
        log.seek(0)
        lines = log.read().decode(errors="replace").splitlines()
    accepted = [line for line in lines if '"WebSocket /ws" [accepted]' in line]
    assert len(accepted) == SOCKETS + 1  # who connected: the access line, one per socket
    opened = [line for line in lines if "connection open" in line]
    assert 2 <= len(opened) <= seconds + 3, opened  # one a second
    assert sum(int(line.split("(and ")[1].split()[0]) for line in opened if "(and " in line) == (
        SOCKETS + 1 - len(opened)  # each socket counted once
    )
