"""Capacity: how many idle subscribers one box holds, and how fast a broadcast reaches them.

    python -m bench.capacity --redis-project <render> --memory-project <render>
                             [--quick] [--json FILE] [--chart FILE.png]

Ramps idle subscribers on ``/ws/broadcast`` in steps and, at each step,
measures the server's resident memory per socket (every process), the
handshakes per second and the server's CPU per handshake during the ramp,
and, for 10 broadcasts, the time from the publisher's send to the arrival at
every socket (p50, p99, the last) with loss counted. A probe echoes on
``/ws`` every 50 ms throughout: its slowest round trip shows any stall of the
event loop it lands on.

One process may open at most 20,000 files here, so the redis render runs
under its production command with several workers (``--workers``), and the
subscribers come from several client processes, each from its own loopback
source address (127.0.0.2, 127.0.0.3, ...) so that no source runs out of
ports. The memory render, a raw ASGI app on the same server (uvicorn) and
bare ``websockets`` run as one process each, up to what one process holds.
Clients read raw frames (``bench.load.FrameReader``): the client is not what
is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from .load import FrameReader, percentile
from .procstat import cpu_ns, rss_bytes
from .run import (
    ROOT,
    SEED_APP,
    free_port,
    raw_uvicorn_command,
    redis_server,
    stop,
    websockets_command,
)

STEPS = [10_000, 25_000, 50_000, 75_000, 100_000]
ONE_PROCESS_STEPS = [2_000, 6_000, 10_000, 14_000, 18_000]  # under the 20,000-file limit
QUICK_STEPS = [2_000, 5_000, 10_000]
QUICK_ONE_PROCESS_STEPS = [1_000, 2_500, 4_000]
PER_CLIENT = 12_500  # sockets per client process (files: 20,000)
WORKER_SHARE = 14_000  # sockets per worker on average: the number of workers
PER_WORKER = 19_000  # QUART_MAX_CONNECTIONS of each: the kernel spreads unevenly, and
# one process holds 18,000 subscribers, the publisher and the probe
BROADCASTS = 10
ARRIVAL_TIMEOUT = 60.0  # seconds a client waits for one broadcast to reach all its sockets
HANDSHAKES_IN_FLIGHT = 50  # per client process
PROBE_INTERVAL = 0.05
APP_ENV = {  # the template's limits, raised for the load
    "QUART_MESSAGES_PER_SECOND": "1000",
    "QUART_MESSAGE_BURST": "1000",
}


# --- client processes --------------------------------------------------------


class Refused(Exception):
    """The server answered the handshake with something other than 101 (a 503: full)."""


class Subscribers:
    """One client process's idle subscribers, from one loopback source address."""

    def __init__(self, source: str, port: int) -> None:
        self.source, self.port = source, port
        self.readers: list[FrameReader] = []
        self.arrivals: dict[int, list[float]] = {}
        self.request = (
            f"GET /ws/broadcast HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    def on_text(self, text: str) -> None:
        number, sent, _ = text.split(":", 2)
        latency = (time.perf_counter_ns() - int(sent)) / 1e9  # one clock for every process
        self.arrivals.setdefault(int(number), []).append(latency)

    async def handshake(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.bind((self.source, 0))
            await loop.sock_connect(sock, ("127.0.0.1", self.port))
            await loop.sock_sendall(sock, self.request)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise Refused("closed during the handshake")
                received += chunk
            head, _, early = received.partition(b"\r\n\r\n")
            if head.split(b" ", 2)[1] != b"101":
                raise Refused(head.split(b"\r\n", 1)[0].decode())
        except BaseException:
            sock.close()
            raise
        _, reader = await loop.connect_accepted_socket(
            lambda: FrameReader(self.on_text, early), sock
        )
        self.readers.append(reader)

    async def open(self, count: int) -> dict[str, int]:
        """Open ``count`` more; a refused handshake (a full worker) is tried again."""
        gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
        refused = failed = 0

        async def one() -> None:
            nonlocal refused, failed
            async with gate:
                for attempt in range(50):
                    try:
                        return await self.handshake()
                    except Refused:
                        refused += 1
                        await asyncio.sleep(0.05 * (attempt + 1))
                    except OSError:
                        break
                failed += 1

        await asyncio.gather(*(one() for _ in range(count)))
        return {"open": len(self.readers), "refused": refused, "failed": failed}

    async def wait_for(self, number: int) -> list[float]:
        """The latencies of broadcast ``number`` once every socket here has it, or the timeout."""
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        while len(self.arrivals.get(number, [])) < len(self.readers):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        return self.arrivals.pop(number, [])


def client_main(pipe: Connection, source: str, port: int) -> None:
    """A client process: obeys ``("open", n)``, ``("wait", number)`` and ``("close",)``."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def serve() -> None:
        subscribers = Subscribers(source, port)
        loop = asyncio.get_running_loop()
        while True:
            command, *arguments = await loop.run_in_executor(None, pipe.recv)
            if command == "open":
                pipe.send(await subscribers.open(*arguments))
            elif command == "wait":
                pipe.send(await subscribers.wait_for(*arguments))
            else:
                for reader in subscribers.readers:
                    if reader.transport is not None:
                        reader.transport.close()
                pipe.send(None)
                return

    asyncio.run(serve())


class Client:
    """The controller's end of one client process."""

    def __init__(self, index: int, port: int) -> None:
        self.pipe, child = multiprocessing.get_context("spawn").Pipe()
        source = f"127.0.0.{index + 2}"
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(target=client_main, args=(child, source, port))
        self.process.start()
        self.open = 0

    async def call(self, *command: Any) -> Any:
        def exchange() -> Any:
            self.pipe.send(command)
            return self.pipe.recv()

        return await asyncio.get_running_loop().run_in_executor(None, exchange)

    def close(self) -> None:
        try:
            self.pipe.send(("close",))
            self.pipe.recv()
        except (OSError, EOFError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# --- the servers -------------------------------------------------------------


@dataclass
class Setup:
    name: str
    command: list[str]
    cwd: Path
    steps: list[int]
    env: dict[str, str] = field(default_factory=dict)
    redis: bool = False


def package_of(project: Path) -> str:
    return project.name.replace("-", "_")


def setups(redis_project: Path, memory_project: Path, quick: bool) -> list[Setup]:
    python = sys.executable
    steps, one = (QUICK_STEPS, QUICK_ONE_PROCESS_STEPS) if quick else (STEPS, ONE_PROCESS_STEPS)
    workers = max(2, math.ceil(max(steps) / WORKER_SHARE))
    app_env = {**APP_ENV, "QUART_MAX_CONNECTIONS": str(PER_WORKER)}
    redis_command = [python, "-m", package_of(redis_project), "--port", "{port}"]
    memory_command = [python, "-m", package_of(memory_project), "--port", "{port}"]
    return [
        Setup(
            f"the redis render, {workers} workers (uvicorn)",
            [*redis_command, "--workers", str(workers)],
            redis_project,
            steps,
            app_env,
            redis=True,
        ),
        Setup(
            "the memory render, one process (uvicorn)", memory_command, memory_project, one, app_env
        ),
        # Quart's own websocket example: the floor of any app on Quart.
        Setup(
            "the seed's Quart app, one process (uvicorn)",
            raw_uvicorn_command(python, SEED_APP),
            ROOT,
            one,
        ),
        Setup("raw ASGI on uvicorn, one process", raw_uvicorn_command(python), ROOT, one),
        Setup("bare websockets, one process", websockets_command(python), ROOT, one),
    ]


@contextmanager
def served(setup: Setup, redis_url: str) -> Iterator[tuple[int, int]]:
    """``setup`` listening on a free port: (port, pid), stopped however the block ends."""
    port = free_port()
    env = {**os.environ, **setup.env, **({"QUART_REDIS_URL": redis_url} if setup.redis else {})}
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in setup.command],
        cwd=setup.cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # an access line per socket
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{setup.name} did not listen on {port}") from None
                time.sleep(0.2)
        time.sleep(2)  # every worker up, not only the first
        yield port, process.pid
    finally:
        stop(process)


# --- the measurement ---------------------------------------------------------


class Probe:
    """An echo every 50 ms on ``/ws``: its slowest round trip since the last ``take``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.slowest = ws, 0.0
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await self.ws.send("probe")
            await self.ws.recv()
            self.slowest = max(self.slowest, time.perf_counter() - started)
            await asyncio.sleep(PROBE_INTERVAL)

    def take(self) -> float:
        slowest, self.slowest = self.slowest, 0.0
        return slowest * 1e3


def stamped(number: int) -> str:
    return f"{number}:{time.perf_counter_ns()}:" + "x" * 32


async def broadcasts(publisher: ClientConnection, clients: list[Client]) -> dict[str, float]:
    """``BROADCASTS`` broadcasts, one after another: arrival times at every socket."""
    latencies: list[float] = []
    lasts: list[float] = []
    expected = sum(client.open for client in clients) * BROADCASTS
    for number in range(BROADCASTS):
        await publisher.send(stamped(number))
        arrived = await asyncio.gather(*(client.call("wait", number) for client in clients))
        each = [latency for part in arrived for latency in part]
        latencies += each
        lasts.append(max(each, default=math.inf))
        await asyncio.sleep(0.2)
    return {
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "last_ms": sorted(lasts)[len(lasts) // 2] * 1e3,  # the median broadcast's last arrival
        "worst_last_ms": max(lasts) * 1e3,
        "loss": expected - len(latencies),
    }


async def ramp(setup: Setup, port: int, pid: int) -> list[dict[str, Any]]:
    clients = [Client(index, port) for index in range(math.ceil(max(setup.steps) / PER_CLIENT))]
    url = f"ws://127.0.0.1:{port}"
    rows: list[dict[str, Any]] = []
    try:
        async with connect(url + "/ws/broadcast") as publisher, connect(url + "/ws") as echo:
            own_copies = asyncio.create_task(drain(publisher))
            probe = Probe(echo)
            await asyncio.sleep(1)
            rss_idle, opened = rss_bytes(pid), 0
            for step in setup.steps:
                probe.take()
                cpu_before, started = cpu_ns(pid), time.perf_counter()
                share = [(step - opened) // len(clients)] * len(clients)
                share[0] += step - opened - sum(share)
                results = await asyncio.gather(
                    *(
                        client.call("open", count)
                        for client, count in zip(clients, share, strict=True)
                    )
                )
                seconds, cpu = time.perf_counter() - started, cpu_ns(pid) - cpu_before
                for client, result in zip(clients, results, strict=True):
                    client.open = result["open"]
                new = sum(client.open for client in clients) - opened
                opened += new
                ramp_lag = probe.take()
                await asyncio.sleep(2)  # settled: the last handshakes' garbage collected
                rss = rss_bytes(pid)
                probe.take()
                delivered = await broadcasts(publisher, clients)
                row = {
                    "setup": setup.name,
                    "sockets": opened,
                    "kib_per_socket": (rss - rss_idle) / 1024 / max(1, opened),
                    "rss_mib": rss / 2**20,
                    "handshakes_per_s": new / seconds,
                    "cpu_us_per_handshake": cpu / 1e3 / max(1, new),
                    "refused": sum(result["refused"] for result in results),
                    "failed": sum(result["failed"] for result in results),
                    "ramp_lag_ms": ramp_lag,
                    "broadcast_lag_ms": probe.take(),
                    **delivered,
                }
                rows.append(row)
                print(progress(row), flush=True)
            probe.task.cancel()
            own_copies.cancel()
    finally:
        for client in clients:
            client.close()
    return rows


async def drain(ws: ClientConnection) -> None:
    async for _ in ws:  # the publisher's own copies: read, or it is a slow client
        pass


def progress(row: dict[str, Any]) -> str:
    return (
        f"  {row['setup']}: {row['sockets']:,} sockets, {row['kib_per_socket']:.1f} KiB each, "
        f"{row['handshakes_per_s']:.0f} handshakes/s, broadcast last {row['last_ms']:.0f} ms, "
        f"loss {row['loss']}, slowest probe {row['ramp_lag_ms']:.0f} ms (ramp), "
        f"{row['broadcast_lag_ms']:.0f} ms (broadcasts)"
    )


TABLE_HEAD = (
    "| setup | sockets | KiB per socket | handshakes/s | CPU per handshake | "
    "broadcast p50 / p99 / last | loss | slowest probe: ramp / broadcasts |\n"
    "|---|---|---|---|---|---|---|---|"
)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [TABLE_HEAD]
    for row in rows:
        lines.append(
            f"| {row['setup']} | {row['sockets']:,} | {row['kib_per_socket']:.1f} "
            f"| {row['handshakes_per_s']:.0f} | {row['cpu_us_per_handshake']:.0f} us "
            f"| {row['p50_ms']:.0f} / {row['p99_ms']:.0f} / {row['last_ms']:.0f} ms "
            f"| {row['loss']} | {row['ramp_lag_ms']:.0f} / {row['broadcast_lag_ms']:.0f} ms |"
        )
    return "\n".join(lines)


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    """Memory per socket and a broadcast's last arrival against sockets, a line per setup."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (memory, arrival) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    for name in dict.fromkeys(row["setup"] for row in rows):
        mine = [row for row in rows if row["setup"] == name]
        sockets = [row["sockets"] for row in mine]
        memory.plot(sockets, [row["kib_per_socket"] for row in mine], marker="o", label=name)
        arrival.plot(sockets, [row["last_ms"] for row in mine], marker="o", label=name)
    memory.set(xlabel="idle sockets", ylabel="server RSS per socket (KiB)", ylim=(0, None))
    arrival.set(xlabel="idle sockets", ylabel="one broadcast: last arrival (ms)", ylim=(0, None))
    memory.legend(fontsize="small")
    for axes in (memory, arrival):
        axes.grid(alpha=0.3)
    figure.suptitle(f"Capacity, {time.strftime('%Y-%m-%d')}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--redis-project", type=Path, required=True)
    parser.add_argument("--memory-project", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a few minutes, to 10,000")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--chart", type=Path, help="draw the chart here (PNG)")
    parser.add_argument("--only", help="run only setups whose name contains this")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers inherit it
    chosen = setups(args.redis_project.resolve(), args.memory_project.resolve(), args.quick)
    chosen = [setup for setup in chosen if not args.only or args.only in setup.name]
    rows: list[dict[str, Any]] = []
    with redis_server() as redis_url:
        for setup in chosen:
            print(f"{setup.name}: ramping to {max(setup.steps):,}", flush=True)
            with served(setup, redis_url) as (port, pid):
                rows += asyncio.run(ramp(setup, port, pid))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.chart:
        chart(rows, args.chart)
        print(f"chart: {args.chart}")
    lost = sum(row["loss"] + row["failed"] for row in rows)
    if lost:
        sys.exit(f"{lost} broadcasts or sockets lost")


if __name__ == "__main__":
    main()
