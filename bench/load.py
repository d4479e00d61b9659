"""The load client: echo round trips, broadcast fan-out, idle and stalled clients.

Every scenario takes a ``Server`` (URL and process id) and returns a dict of
figures; server CPU and memory come from /proc, never from the client's view.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from .procstat import cpu_ns, rss_bytes

PAYLOAD = 64  # bytes of text per message
Headers = Sequence[tuple[str, str]]  # extra handshake headers (a ticket)


@dataclass
class Server:
    port: int
    pid: int

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def open_clients(url: str, count: int, headers: Headers = ()) -> list[ClientConnection]:
    gate = asyncio.Semaphore(64)  # bounded handshakes in flight

    async def one() -> ClientConnection:
        async with gate:
            return await connect(
                url,
                compression=None,
                ping_interval=None,
                open_timeout=60,
                max_size=2**20,
                additional_headers=list(headers),
            )

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(clients: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


async def echo(server: Server, connections: int = 50, duration: float = 5.0) -> dict[str, Any]:
    """Round trips on many connections at once, each waiting for its echo."""
    clients = await open_clients(server.url("/ws"), connections)
    payload = "x" * PAYLOAD
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def round_trips(ws: ClientConnection) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await ws.send(payload)
            assert await ws.recv() == payload
            latencies.append(time.perf_counter() - start)

    cpu_before, started = cpu_ns(server.pid), time.perf_counter()
    await asyncio.gather(*(round_trips(ws) for ws in clients))
    elapsed, cpu = time.perf_counter() - started, cpu_ns(server.pid) - cpu_before
    await close_all(clients)
    return {
        "round_trips": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "cpu_us": cpu / 1e3 / max(1, len(latencies)),
    }


class FrameReader(asyncio.Protocol):
    """A subscriber that parses the server's frames itself, with the least client CPU.

    A ``websockets`` client spends about 20 us of Python per message it reads;
    1,000 subscribers on one client core would then take 20 ms to read one
    broadcast, and the publish-to-receive p99 would measure this client, not
    the server. Server frames are unmasked and, here, small and unfragmented.
    """

    def __init__(self, on_text: Callable[[str], None], early_frames: bytes = b"") -> None:
        self.on_text = on_text
        self.buffer = bytearray(early_frames)  # what came with the handshake's response
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            opcode, length, start = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(self.buffer[2:4]), 4
            elif length == 127:
                length, start = int.from_bytes(self.buffer[2:10]), 10
            if len(self.buffer) < start + length:
                return
            payload = bytes(self.buffer[start : start + length])
            del self.buffer[: start + length]
            if opcode == 0x1:
                self.on_text(payload.decode())
            elif opcode == 0x9 and self.transport is not None:  # ping: a pong, masked with 0s
                self.transport.write(bytes([0x8A, 0x80 | length, 0, 0, 0, 0]) + payload)
            elif opcode == 0x8 and self.transport is not None:
                self.transport.close()


async def handshake(url: str, headers: Headers = ()) -> tuple[socket.socket, bytes]:
    """Open a websocket on a plain non-blocking socket, with ``websockets``' sans-I/O client.

    Gives the socket and the bytes of frames that came after the response
    (a frame may be cut anywhere): the caller decides what happens next, read
    it lean, or never read at all.
    """
    uri = parse_uri(url)
    protocol = ClientProtocol(uri)  # offers no extension: no compression
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, (uri.host, uri.port))
    request = protocol.connect()
    for name, value in headers:
        request.headers[name] = value
    protocol.send_request(request)
    await loop.sock_sendall(sock, b"".join(protocol.data_to_send()))
    received = b""
    while protocol.state is State.CONNECTING:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        received += chunk
        protocol.receive_data(chunk)
    if protocol.state is not State.OPEN:
        raise ConnectionError(f"handshake failed: {protocol.handshake_exc}")
    return sock, received[received.index(b"\r\n\r\n") + 4 :]


async def open_reader(
    url: str, on_text: Callable[[str], None], headers: Headers = ()
) -> FrameReader:
    """A subscriber that reads with ``FrameReader`` once its handshake is done."""
    sock, early_frames = await handshake(url, headers)
    loop = asyncio.get_running_loop()
    _, reader = await loop.connect_accepted_socket(lambda: FrameReader(on_text, early_frames), sock)
    return reader


def stamped(number: int) -> str:
    head = f"{number}:{time.perf_counter_ns()}:"
    return head + "x" * max(0, PAYLOAD - len(head))


async def fan_out(
    server: Server, subscribers: int, rate: float, duration: float, path: str = "/ws/broadcast"
) -> dict[str, Any]:
    """``rate`` broadcasts a second to ``subscribers`` clients; one of them publishes.

    ``path`` may be a room (``/ws/rooms/<name>``), whose frames are JSON.
    """
    rss_before = rss_bytes(server.pid)
    latencies: list[float] = []
    warmed = [0]
    warm = asyncio.Event()

    def on_text(message: str) -> None:
        if message.startswith("{"):  # a room frame
            frame = json.loads(message)
            if "data" not in frame:
                return  # a heartbeat
            message = frame["data"]
        number, sent, _ = message.split(":", 2)
        if number == "-1":  # the warm-up message: everyone is subscribed
            warmed[0] += 1
            if warmed[0] == subscribers:
                warm.set()
        else:
            latencies.append((time.perf_counter_ns() - int(sent)) / 1e9)

    gate = asyncio.Semaphore(64)  # bounded handshakes in flight

    async def subscribe() -> FrameReader:
        async with gate:
            return await open_reader(server.url(path), on_text)

    readers = await asyncio.gather(*(subscribe() for _ in range(subscribers - 1)))
    (publisher,) = await open_clients(server.url(path), 1)
    await asyncio.sleep(0.5)
    idle_kib_each = (rss_bytes(server.pid) - rss_before) / 1024 / subscribers

    async def read_own_copies() -> None:
        async for message in publisher:
            on_text(str(message))

    own_copies = asyncio.create_task(read_own_copies())
    await publisher.send(stamped(-1))
    await asyncio.wait_for(warm.wait(), 60)

    count = max(1, int(rate * duration))
    cpu_before, started = cpu_ns(server.pid), time.perf_counter()
    for number in range(count):
        await publisher.send(stamped(number))
        next_at = started + (number + 1) / rate
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    expected = count * subscribers
    settle = time.perf_counter() + 10
    while len(latencies) < expected and time.perf_counter() < settle:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    cpu = cpu_ns(server.pid) - cpu_before
    own_copies.cancel()
    await publisher.close()
    for reader in readers:
        if reader.transport is not None:
            reader.transport.close()
    return {
        "subscribers": subscribers,
        "deliveries": len(latencies),
        "per_second": len(latencies) / elapsed,
        "loss": expected - len(latencies),
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "cpu_us": cpu / 1e3 / max(1, len(latencies)),
        "idle_kib_each": idle_kib_each,
    }


async def stalled_subscriber(server: Server, messages: int = 2000) -> dict[str, Any]:
    """Memory growth while one subscriber reads nothing and 16 KiB broadcasts flow.

    32 MB in all: far more than the kernel's socket buffers can hide.
    """
    stalled, _ = await handshake(server.url("/ws/broadcast"))  # and never read again
    (publisher,) = await open_clients(server.url("/ws/broadcast"), 1)
    body = "y" * 16 * 1024
    await asyncio.sleep(0.5)
    before = rss_bytes(server.pid)
    for _ in range(messages):
        await publisher.send(body)
        await asyncio.wait_for(publisher.recv(), 10)  # our own copy: paced, never a burst
    await asyncio.sleep(0.5)
    growth = rss_bytes(server.pid) - before
    stalled.close()
    await publisher.close()
    return {
        "messages": messages,
        "growth_kib": growth / 1024,
        "sent_kib": messages * 16,
        # The generated app's default QUART_BROADCAST_QUEUE_SIZE of 16 KiB messages,
        # plus the transport's write buffer (64 KiB high-water mark and the frame
        # being written) and allocator slack: what "bounded" can mean in RSS.
        "queue_bound_kib": 100 * 16 + 256,
    }


async def resume(server: Server, missed: int = 100, repeats: int = 5) -> dict[str, Any]:
    """Time from opening ``/ws/rooms/<room>?since=<id>`` to the last of ``missed`` replayed.

    Each repeat uses a fresh room: one message is seen, ``missed`` more are
    published, then a new connection resumes after the first; the median is kept.
    """
    times: list[float] = []
    for repeat in range(repeats):
        url = server.url(f"/ws/rooms/resume-{repeat}-{time.time_ns()}")
        (publisher,) = await open_clients(url, 1)
        await publisher.send("seen")
        since = json.loads(await publisher.recv())["id"]
        for number in range(missed):
            await publisher.send(f"missed {number}")
            await publisher.recv()  # paced: our own copy
        started = time.perf_counter()
        (resuming,) = await open_clients(f"{url}?since={since}", 1)
        frames: list[dict[str, Any]] = []
        while len(frames) < missed:
            frame = json.loads(await asyncio.wait_for(resuming.recv(), 10))
            if frame["type"] == "message":  # not a heartbeat
                frames.append(frame)
        times.append(time.perf_counter() - started)
        assert [frame["data"] for frame in frames] == [f"missed {n}" for n in range(missed)]
        await close_all([publisher, resuming])
    return {"missed": missed, "p50_ms": percentile(times, 0.5) * 1e3}
