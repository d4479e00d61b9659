"""Past one Redis: what each process receives, and room delivery on a Cluster.

    python -m bench.cluster --project <broadcast_backend=redis render> [--quick]

Runs twice, on one redis-server and on a Redis Cluster of 3 masters and 3
replicas (the render's own ``tests/broadcast/redis/redis_cluster.py``):

- routing: two app processes, each with clients in 10 rooms of its own; 20
  messages are published to each of the 20 rooms; each process's
  ``redis_messages_received_total`` tells what Redis sent it. With one
  channel for everything (the design before sharded channels) each process
  received all 400; now it should receive its own 200.
- delivery: one app process, 1,000 subscribers in one room, 10 messages a
  second: server CPU per delivery, the Cluster's against one Redis's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from . import load, run

TOKEN = "bench-token"
METRICS = "bench-metrics"
ROOMS = 10  # per process
MESSAGES = 20  # per room
DELIVERY_TARGET = 1.1  # a Cluster's CPU per room delivery over one Redis's


def post(port: int, room: str, text: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/rooms/{room}/messages",
        data=text.encode(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def received(port: int) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("redis_messages_received_total "):
                return float(line.split()[1])
    raise LookupError("no redis_messages_received_total in /metrics")


def app_stack(project: Path, redis_url: str) -> run.Stack:
    """The render under Hypercorn on ``redis_url``, with tokens to post and to scrape."""
    app = project.name.replace("-", "_") + ":app"
    env = {**run.BENCH_ENV, "QUART_REDIS_URL": redis_url, "QUART_BROADCAST_TOKEN": TOKEN}
    env["QUART_METRICS_TOKEN"] = METRICS
    command = [*run.hypercorn_command(sys.executable, project), app]
    return run.Stack("app", command, project, env=env)


async def routing(project: Path, redis_url: str) -> dict[str, Any]:
    with (
        run.served(app_stack(project, redis_url)) as one,
        run.served(app_stack(project, redis_url)) as two,
    ):
        first, second = one.port, two.port
        mine = {first: [f"a-{n}" for n in range(ROOMS)], second: [f"b-{n}" for n in range(ROOMS)]}
        got: dict[int, int] = {first: 0, second: 0}

        def counter(port: int) -> Any:
            def on_text(text: str) -> None:
                if json.loads(text).get("type") == "message":
                    got[port] += 1

            return on_text

        readers = [
            await load.open_reader(f"ws://127.0.0.1:{port}/ws/rooms/{room}", counter(port))
            for port, rooms in mine.items()
            for room in rooms
        ]
        await asyncio.sleep(0.5)
        before = {port: received(port) for port in mine}
        for number in range(MESSAGES):
            for port, rooms in mine.items():
                for room in rooms:  # each published through the other process
                    other = second if port == first else first
                    await asyncio.to_thread(post, other, room, f"{room} {number}")
        expected = 2 * ROOMS * MESSAGES
        for _ in range(500):
            if sum(got.values()) >= expected:
                break
            await asyncio.sleep(0.02)
        after = {port: received(port) for port in mine}
        for reader in readers:
            if reader.transport is not None:
                reader.transport.close()
    return {
        "published": expected,
        "delivered": sum(got.values()),
        "received": [after[port] - before[port] for port in (first, second)],
    }


async def delivery(project: Path, redis_url: str, quick: bool) -> dict[str, Any]:
    with run.served(app_stack(project, redis_url)) as server:
        return await load.fan_out(server, 1000, 10, 2 if quick else 5, path="/ws/rooms/bench")


def measure(project: Path, redis_url: str, quick: bool) -> dict[str, Any]:
    return {
        "routing": asyncio.run(routing(project, redis_url)),
        "delivery": asyncio.run(delivery(project, redis_url, quick)),
    }


def report(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| Redis | published | received by process 1 / 2 (each should get its own half) "
        "| with one channel for all (before) | CPU us per room delivery, 1k subs | loss |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        routed, delivered = result["routing"], result["delivery"]
        one, two = routed["received"]
        lines.append(
            f"| {name} | {routed['published']} | {one:.0f} / {two:.0f} | "
            f"{routed['published']} / {routed['published']} | {delivered['cpu_us']:.1f} "
            f"| {delivered['loss']} |"
        )
    single, cluster = results["one redis"], results["cluster"]
    ratio = cluster["delivery"]["cpu_us"] / single["delivery"]["cpu_us"]
    half = single["routing"]["published"] // 2
    checks = [
        (
            f"each process receives only its own rooms' {half} messages, on both",
            all(r["routing"]["received"] == [half, half] for r in results.values()),
        ),
        (
            f"every message delivered to its room, on both: "
            f"{single['routing']['delivered']} and {cluster['routing']['delivered']}"
            f" of {single['routing']['published']}",
            all(r["routing"]["delivered"] == r["routing"]["published"] for r in results.values()),
        ),
        (
            f"room delivery CPU on the Cluster <= {DELIVERY_TARGET}x one Redis: {ratio:.2f}x",
            ratio <= DELIVERY_TARGET,
        ),
    ]
    return "\n".join([*lines, "", *run.targets_met("targets past one Redis:", checks)])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--project", type=Path, required=True, help="a redis backend render")
    parser.add_argument("--quick", action="store_true", help="shorter runs, for a smoke test")
    parser.add_argument("--json", type=Path, default=Path("bench-cluster.json"))
    args = parser.parse_args()
    run.prepare_client()
    project = args.project.resolve()
    sys.path.insert(0, str(project))  # the render's own Redis Cluster for its tests
    from tests.broadcast.redis.redis_cluster import running_cluster

    results: dict[str, dict[str, Any]] = {}
    with run.redis_server() as redis_url:
        print("-- one redis", flush=True)
        results["one redis"] = measure(project, redis_url, args.quick)
    with running_cluster() as cluster:
        print("-- cluster", flush=True)
        results["cluster"] = measure(project, cluster.url, args.quick)
    print(report(results))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
