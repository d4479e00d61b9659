"""A soak test that finds leaks: many misbehaving connections against a real server.

    python -m tests.broadcast.soak --cycles 10000 --steady 200 [--server SERVER]

Connection cycles mix clean closes, abrupt drops (RST), half-finished
handshakes, garbage bytes instead of a handshake, and connections that vanish
in the middle of a message. Meanwhile steady clients receive a stream of
messages that must arrive whole and in order. Afterwards, with every client
gone, the server's open files (less its Redis connections), event-loop tasks,
subscribers and websockets must be back where they started, and its memory
within 10 % of where it was after a warm-up (the first fifth of the cycles),
unless ``--memory show``.
The figures come from the app's own ``/metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from ..helpers import connect
from ..servers import PRODUCTION, SERVERS, LiveServer, read_metrics, run_server

# The figures that must come back to their starting values.
COUNTS = ("process_open_fds", "asyncio_tasks", "websocket_connections", "broadcast_subscribers")
RSS = "process_resident_memory_bytes"
CONCURRENCY = 32  # connection cycles at once
SETTLE = 2.5  # seconds: Hypercorn's ping task of a closed websocket ends (2 s here)
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


# Hypercorn's ping task of a closed websocket lives until its next ping, and
# holds the connection until then: with the production interval (20 s) the
# counts would settle only that much later.
SERVER_OPTIONS = {"hypercorn": ("--websocket-ping-interval", "2"), "uvicorn": ()}


def server_env() -> dict[str, str]:
    """What the server under soak needs: room for every connection (and metrics=True)."""
    return {
        "QUART_MAX_CONNECTIONS": "5000",
        "QUART_MESSAGES_PER_SECOND": "1000",
        "QUART_MESSAGE_BURST": "1000",
    }


def outbound_connections(server: LiveServer) -> int:
    """The TCP connections the server opened itself (to Redis), over its process and children.

    Every client's connection has the server's port on the server's side; any
    other is one the server made. A pool may open one more at a busier moment
    of the soak and keep it: that is its peak, not a leak, so open files are
    counted without them.
    """
    pid = server.process.pid
    pids = [pid, *Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    inodes = set()
    for each in pids:
        for fd in Path(f"/proc/{each}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed meanwhile
                inodes.add(os.readlink(fd).removeprefix("socket:[").removesuffix("]"))
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port != server.port and fields[9] in inodes:
                count += 1
    return count


def read_counts(server: LiveServer) -> dict[str, float]:
    """The server's metrics, its open files less the connections it opened itself."""
    figures = read_metrics(server)
    figures["outbound_connections"] = outbound = outbound_connections(server)
    figures["process_open_fds"] -= outbound
    return figures


def rst(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN: the peer just vanished."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def raw_cycle(port: int, kind: str) -> None:
    """One misbehaving connection, done with a plain blocking socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if kind == "half-handshake":
            sock.sendall(HANDSHAKE[: len(HANDSHAKE) // 2])
        elif kind == "garbage":
            sock.sendall(random.randbytes(200))
        else:  # a real handshake, then an RST, or a frame cut short and an RST
            sock.sendall(HANDSHAKE)
            sock.recv(4096)  # 101 Switching Protocols
            if kind == "mid-message":
                # A masked text frame announcing 1,000 bytes, of which 10 arrive.
                sock.sendall(b"\x81\xfe\x03\xe8\x00\x00\x00\x00" + b"x" * 10)
    finally:
        if kind in ("rst", "mid-message"):
            rst(sock)
        else:
            sock.close()


async def clean_cycle(server: LiveServer) -> None:
    async with connect(f"{server.ws_url}/ws") as ws:
        await ws.send("soak")
        assert await ws.recv() == "soak"


async def subscriber_cycle(server: LiveServer, path: str) -> None:
    """Subscribe on the steady clients' path, then leave at once."""
    async with connect(f"{server.ws_url}{path}"):
        pass


@dataclass
class Steady:
    """Clients that stay for the whole soak and must get every message, in order."""

    clients: list[ClientConnection]
    received: list[list[str]] = field(default_factory=list)

    async def read(self, index: int, until: str) -> None:
        got = self.received[index]
        while not got or got[-1] != until:
            message = await asyncio.wait_for(self.clients[index].recv(), 30)
            got.append(str(message))


async def soak(server: LiveServer, cycles: int, steady: int, path: str) -> dict[str, Any]:
    """Run the soak against ``server``; return the figures and what went wrong."""
    # One message and as many handshakes at once as the soak makes (CONCURRENCY)
    # first: the broker's connection pool (redis backend) opens the connections
    # it keeps now, not in the middle of the count.
    async with connect(f"{server.ws_url}{path}") as first:
        await first.send("warm-up")
        await first.recv()
    await asyncio.gather(*(subscriber_cycle(server, path) for _ in range(CONCURRENCY)))
    await asyncio.sleep(SETTLE)  # and their ping tasks end (SERVER_OPTIONS)
    start = await asyncio.to_thread(read_counts, server)
    clients = [await connect(f"{server.ws_url}{path}") for _ in range(steady)]
    stream = Steady(clients, [[] for _ in clients])
    readers = [asyncio.create_task(stream.read(i, "end")) for i in range(steady)]
    sender = clients[0]
    kinds = ["clean", "subscriber", "rst", "half-handshake", "garbage", "mid-message"]
    gate = asyncio.Semaphore(CONCURRENCY)
    sent: list[str] = []

    async def one(number: int) -> None:
        kind = kinds[number % len(kinds)]
        async with gate:
            try:
                if kind == "clean":
                    await clean_cycle(server)
                elif kind == "subscriber":
                    await subscriber_cycle(server, path)
                else:
                    await asyncio.to_thread(raw_cycle, server.port, kind)
            except (OSError, TimeoutError):
                pass  # the server may reset a misbehaving client first: that is fine
        if number % 50 == 0:  # the steady stream goes on throughout
            sent.append(f"message {number}")
            await sender.send(sent[-1])

    warm_up = max(1, cycles // 5)  # long enough to reach the peak of concurrency
    await asyncio.gather(*(one(n) for n in range(warm_up)))
    await asyncio.sleep(1)
    warm = await asyncio.to_thread(read_counts, server)
    started = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(warm_up, cycles)))
    elapsed = time.monotonic() - started
    await sender.send("end")
    await asyncio.gather(*readers)
    await asyncio.gather(*(ws.close() for ws in clients))
    end = await settled(server, start)
    leaks = [
        f"{name}: {start[name]:.0f} at the start, {end[name]:.0f} at the end"
        for name in COUNTS
        if end[name] > start[name]
    ]
    if path != "/ws" and warm["broadcast_subscribers"] < start["broadcast_subscribers"] + steady:
        leaks.append("broadcast_subscribers did not count the steady clients")
    expected = [*sent, "end"]
    leaks += [f"steady client {i} got {len(got)} of {len(expected)} messages, or out of order"
              for i, got in enumerate(stream.received) if got != expected]  # fmt: skip
    growth = []
    if end[RSS] > 1.1 * warm[RSS]:
        growth.append(f"RSS grew from {warm[RSS] / 2**20:.1f} to {end[RSS] / 2**20:.1f} MiB")
    return {
        "cycles": cycles,
        "steady": steady,
        "cycles_per_second": (cycles - warm_up) / elapsed,
        "start": start,
        "warm": warm,
        "end": end,
        "leaks": leaks,  # objects left behind, or messages lost
        "problems": leaks + growth,
    }


async def settled(server: LiveServer, start: dict[str, float]) -> dict[str, float]:
    """The metrics once the server has let go of every connection (20 s at most).

    Hypercorn drops a half-finished handshake after its keep-alive timeout (5 s).
    """
    deadline = time.monotonic() + 20
    while True:
        figures = await asyncio.to_thread(read_counts, server)
        done = all(figures[name] <= start[name] for name in COUNTS)
        if done or time.monotonic() > deadline:
            return figures
        await asyncio.sleep(0.2)


def report(figures: dict[str, Any]) -> str:
    lines = [f"{figures['cycles']} cycles, {figures['steady']} steady clients, "
             f"{figures['cycles_per_second']:.0f} cycles/s"]  # fmt: skip
    lines.append("| figure | start | after warm-up | end |")
    lines.append("|---|---|---|---|")
    for name in (*COUNTS, "outbound_connections", RSS):
        values = [figures[when][name] for when in ("start", "warm", "end")]
        lines.append(f"| {name} | " + " | ".join(f"{value:.0f}" for value in values) + " |")
    lines += [f"PROBLEM: {problem}" for problem in figures["problems"]] or ["no leak found"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.broadcast.soak", description=__doc__)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--steady", type=int, default=200)
    parser.add_argument("--path", default="/ws/broadcast", help="of the steady clients")
    parser.add_argument("--server", choices=SERVERS, default=PRODUCTION)
    parser.add_argument(
        "--memory",
        choices=("check", "show"),
        default="check",
        help="show: print memory growth without failing on it (Hypercorn, README.md: Deploy)",
    )
    args = parser.parse_args(argv)
    options = SERVER_OPTIONS[args.server]
    with run_server(server=args.server, env=server_env(), options=options, metrics=True) as server:
        figures = asyncio.run(soak(server, args.cycles, args.steady, args.path))
    print(report(figures))
    if figures["leaks"] or (figures["problems"] and args.memory == "check"):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
