"""What knowing the user costs: a render with ``users=true`` against one without.

    python -m bench.users --anonymous <users=false render> --users <users=true render>
                          [--rounds 3] [--quick] [--json FILE]

Both renders are served the same way (``python -m <package>``, uvicorn, the
memory backend), in turn, ``--rounds`` times; each round serves both, and a
ratio is taken within its round (the median of the rounds is shown), so that
the machine's drift between rounds cancels out. On each server, in order:

- handshakes: open ``/ws/broadcast`` and close it, 500 times, 8 at a time;
  the users app gets a ticket in each (minted before, through the API);
- room delivery: 1,000 members of one room (each its own user), one of them
  publishing 10 messages a second for 5 s;
- presence churn: with those 1,000 still in the room, one more user joins
  and leaves 100 times; the users app's members each get a join and a leave.

Server CPU comes from /proc, as in ``bench.run``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from . import load, run
from .procstat import cpu_ns

TOKEN = "bench-server-token"
ENV = {
    **run.BENCH_ENV,
    "QUART_ANY_USER_TOKEN": TOKEN,
    "QUART_SECRET_KEY": "bench-secret-key-bench-secret-key",
    "QUART_TICKET_SECONDS": "3600",  # the tickets minted first serve the whole run
}
ROOM = "/ws/rooms/bench"
HANDSHAKE_TARGET = 1.2  # users' handshake CPU over the anonymous one's
DELIVERY_TARGET = 1.1  # users' room delivery CPU over the anonymous one's


@dataclass
class Credentials:
    """Handshake headers for user number ``n``: a fresh ticket each (one opens one socket)."""

    tickets: list[list[str]]

    def headers(self, number: int) -> load.Headers:
        if not self.tickets:
            return ()
        return [("Authorization", f"Bearer {self.tickets[number].pop()}")]


def mint(port: int, users: int, each: int, extra: dict[int, int]) -> Credentials:
    """``each`` tickets per user ``u0`` ... (``extra[n]`` more for user n), with the token."""
    tickets: list[list[str]] = []
    for number in range(users):
        tickets.append([])
        for _ in range(each + extra.get(number, 0)):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/tickets",
                data=json.dumps({"user": f"u{number}"}).encode(),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                tickets[-1].append(json.load(response)["ticket"])
    return Credentials(tickets)


async def handshakes(server: load.Server, who: Credentials, count: int) -> dict[str, float]:
    """Server CPU per open-and-close of ``/ws/broadcast``."""
    gate = asyncio.Semaphore(8)

    async def one(number: int) -> None:
        async with gate:
            sock, _ = await load.handshake(server.url("/ws/broadcast"), who.headers(number))
            sock.close()

    before = cpu_ns(server.pid)
    await asyncio.gather(*(one(number % 1000) for number in range(count)))
    await asyncio.sleep(0.5)  # the server's side of the closes
    return {"cpu_us": (cpu_ns(server.pid) - before) / 1e3 / count}


class Room:
    """``members`` readers in one room, counting what they receive."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.latencies: list[float] = []
        self.bytes = 0
        self.warmed = 0
        self.warm = asyncio.Event()
        self.changes = 0
        self.changed = asyncio.Event()

    def on_text(self, text: str) -> None:
        self.bytes += len(text)
        frame = json.loads(text)
        if frame["type"] in ("join", "leave"):
            self.changes += 1
            self.changed.set()
        if frame["type"] != "message":
            return
        number, sent, _ = frame["data"].split(":", 2)
        if number == "-1":
            self.warmed += 1
            if self.warmed == self.members:
                self.warm.set()
        else:
            self.latencies.append((time.perf_counter_ns() - int(sent)) / 1e9)


async def room_scenarios(
    server: load.Server, who: Credentials, members: int, rate: float, duration: float, churns: int
) -> dict[str, Any]:
    """Room delivery to ``members``, then ``churns`` joins and leaves among them."""
    room = Room(members)
    gate = asyncio.Semaphore(64)

    async def member(number: int) -> load.FrameReader:
        async with gate:
            return await load.open_reader(server.url(ROOM), room.on_text, who.headers(number))

    readers = await asyncio.gather(*(member(number) for number in range(members - 1)))
    (publisher,) = await load.open_clients(server.url(ROOM), 1, who.headers(members - 1))
    own = asyncio.create_task(read_into(publisher, room))
    await publisher.send(load.stamped(-1))
    await asyncio.wait_for(room.warm.wait(), 120)  # every join delivered before it too

    count = int(rate * duration)
    before, started = cpu_ns(server.pid), time.perf_counter()
    for number in range(count):
        await publisher.send(load.stamped(number))
        await asyncio.sleep(max(0.0, started + (number + 1) / rate - time.perf_counter()))
    deadline = time.perf_counter() + 10
    while len(room.latencies) < count * members and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    delivery = {
        "cpu_us": (cpu_ns(server.pid) - before) / 1e3 / max(1, len(room.latencies)),
        "loss": count * members - len(room.latencies),
        "p99_ms": load.percentile(room.latencies, 0.99) * 1e3,
    }
    churn = await presence_churn(server, who, room, churns)
    own.cancel()
    await publisher.close()
    for reader in readers:
        if reader.transport is not None:
            reader.transport.close()
    return {"room_delivery": delivery, "churn": churn}


async def read_into(publisher: Any, room: Room) -> None:
    async for message in publisher:
        room.on_text(str(message))


async def presence_churn(
    server: load.Server, who: Credentials, room: Room, churns: int
) -> dict[str, Any]:
    """User ``members`` joins and leaves ``churns`` times, each leave seen by every member."""
    full_list = 0
    bytes_before, changes_before = room.bytes, room.changes
    before = cpu_ns(server.pid)
    for cycle in range(churns):
        guest = list(who.headers(room.members))
        async with connect(server.url(ROOM), additional_headers=guest) as ws:
            if who.tickets:
                full_list = len(str(await ws.recv()))  # the presence frame: everyone
        # With users, every member gets the join and the leave before the next.
        while who.tickets and room.changes - changes_before < 2 * room.members * (cycle + 1):
            room.changed.clear()
            await asyncio.wait_for(room.changed.wait(), 10)
    await asyncio.sleep(0.5)  # the server's side of the last close
    changes = 2 * churns
    return {
        "cpu_us": (cpu_ns(server.pid) - before) / 1e3 / changes,
        "bytes_per_change": (room.bytes - bytes_before) / changes,
        "full_list_bytes": full_list * room.members,
    }


async def measure(server: load.Server, who: Credentials, quick: bool) -> dict[str, Any]:
    scale = 0.4 if quick else 1.0
    results: dict[str, Any] = {"handshake": await handshakes(server, who, int(500 * scale))}
    await asyncio.sleep(1)
    scenarios = room_scenarios(server, who, 1000, 10, 5 * scale, int(100 * scale))
    results.update(await asyncio.wait_for(scenarios, 300))
    return results


def serve(project: Path, users: bool, quick: bool) -> dict[str, Any]:
    """Start ``project`` as its README says, measure it, stop it."""
    stack = run.Stack(project.name, run.package_command(sys.executable, project), project, env=ENV)
    with run.served(stack) as server:
        # A handshake each, a room socket each, and the guest's churn (room_scenarios).
        who = mint(server.port, 1001, 2, {1000: 101}) if users else Credentials([])
        return asyncio.run(measure(server, who, quick))


def median_ratio(rounds: list[dict[str, Any]], scenario: str) -> float:
    ratios = [r["users"][scenario]["cpu_us"] / r["anonymous"][scenario]["cpu_us"] for r in rounds]
    return statistics.median(ratios)


def report(rounds: list[dict[str, Any]]) -> str:
    def median(side: str, scenario: str, figure: str = "cpu_us") -> float:
        return statistics.median(r[side][scenario][figure] for r in rounds)

    lines = [
        "| server CPU, median of rounds | users=false | users=true | ratio (per round, median) |",
        "|---|---|---|---|",
    ]
    names = {
        "handshake": "us per handshake, /ws/broadcast",
        "room_delivery": "us per delivery, room of 1,000",
        "churn": "us per join or leave, room of 1,000",
    }
    for scenario, name in names.items():
        lines.append(
            f"| {name} | {median('anonymous', scenario):.1f} | {median('users', scenario):.1f} "
            f"| {median_ratio(rounds, scenario):.2f}x |"
        )
    # A change is one small frame to each member: about one room delivery each.
    per_member = median("users", "churn") / 1000
    delivery_us = median("users", "room_delivery")
    lines.append(f"| us per join or leave, per member | | {per_member:.1f} | |")
    sent = median("users", "churn", "bytes_per_change")
    full = median("users", "churn", "full_list_bytes")
    lost = [r[side]["room_delivery"]["loss"] for r in rounds for side in ("anonymous", "users")]
    handshake, delivery = median_ratio(rounds, "handshake"), median_ratio(rounds, "room_delivery")
    checks = [
        (f"handshake CPU with a ticket <= {HANDSHAKE_TARGET}x anonymous: {handshake:.2f}x",
         handshake <= HANDSHAKE_TARGET),
        (f"room delivery CPU with users <= {DELIVERY_TARGET}x without: {delivery:.2f}x",
         delivery <= DELIVERY_TARGET),
        (f"a presence change sends {sent / 1024:.1f} KiB to the 1,000 members, "
         f"a full list each would be {full / 1024:.0f} KiB (<= 1/10 of it)", sent * 10 <= full),
        (f"a presence change costs each member {per_member:.1f} us, <= 1.5x a room "
         f"delivery ({delivery_us:.1f} us)", per_member <= 1.5 * delivery_us),
        (f"no room delivery lost: {sum(lost)} lost", not any(lost)),
    ]  # fmt: skip
    return "\n".join([*lines, "", *run.targets_met("targets of users=true:", checks)])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.users", description=__doc__)
    parser.add_argument("--anonymous", type=Path, required=True, help="a users=false render")
    parser.add_argument("--users", type=Path, required=True, help="a users=true render")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="shorter runs, for a smoke test")
    parser.add_argument("--json", type=Path, default=Path("bench-users.json"))
    args = parser.parse_args()
    run.prepare_client()
    rounds = []
    for number in range(1 if args.quick else args.rounds):
        print(f"-- round {number + 1}", flush=True)
        rounds.append(
            {
                "anonymous": serve(args.anonymous.resolve(), False, args.quick),
                "users": serve(args.users.resolve(), True, args.quick),
            }
        )
    print(report(rounds))
    args.json.write_text(json.dumps(rounds, indent=2))
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
