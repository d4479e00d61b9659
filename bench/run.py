"""Serve each stack, load it from another core, print one table, write JSON.

    python -m bench.run --project <server=hypercorn render>
                        --uvicorn-project <server=uvicorn render>
                        [--redis-project <broadcast_backend=redis render>]
                        [--newest-python <python with the renders installed>]
                        [--quick] [--only NAME]

Servers run pinned to core 0 and this load client to core 1 (when there are
two). Server CPU and memory are read from /proc for the server's process tree.
With ``--newest-python`` the baseline and the two offered setups run again on
that interpreter, each compared with the baseline of its own Python.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import load

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE, CLIENT_CORE = {0}, {1}
BASELINE = "websockets (bare)"
STARLETTE = "starlette + uvicorn"
HYPERCORN = "quart + hypercorn (uvloop)"  # the default server=hypercorn
UVICORN = "quart + python -m (uvicorn)"  # the server=uvicorn choice
REDIS = "quart + hypercorn, redis backend"  # broadcast_backend=redis
OFFERED = (HYPERCORN, UVICORN, REDIS)
# A raw ASGI app (bench/peers/raw_asgi.py) on each offered server, set up alike:
# what Quart and the template add over the server they run on.
RAW_HYPERCORN = "raw ASGI + hypercorn (uvloop)"
RAW_UVICORN = "raw ASGI + uvicorn"
RAW_OF = {HYPERCORN: RAW_HYPERCORN, UVICORN: RAW_UVICORN}
RAW_APP = "bench.peers.raw_asgi:app"
# Quart's own websocket example (bench/peers/seed_quart.py) on the same servers:
# what the template adds over plain Quart.
SEED_HYPERCORN = "seed's Quart app + hypercorn (uvloop)"
SEED_UVICORN = "seed's Quart app + uvicorn"
SEED_APP = "bench.peers.seed_quart:app"
SEED_OF = {HYPERCORN: SEED_HYPERCORN, UVICORN: SEED_UVICORN}
SEED_LIMIT = 1.10  # the template at most 1.10x Quart's own example (issue #30)
# The generated app's limits, raised for the load: 5,000 subscribers, and one
# publisher sending 50 messages a second.
BENCH_ENV = {
    "QUART_MAX_CONNECTIONS": "20000",
    "QUART_MESSAGES_PER_SECOND": "100000",
    "QUART_MESSAGE_BURST": "100000",
}


@dataclass
class Stack:
    name: str
    command: list[str]
    cwd: Path
    rooms: bool = False  # the generated app: it has /ws/rooms/<room>
    baseline: str = BASELINE  # bare websockets on the same Python
    env: dict[str, str] = field(default_factory=dict)


def hypercorn_command(python: str, project: Path) -> list[str]:
    """Hypercorn with the render's production settings, ``<package>/hypercorn_config.py``.

    A render of an older template (for paired rounds) has ``hypercorn.toml`` instead.
    """
    config = "python:" + project.name.replace("-", "_") + ".hypercorn_config"
    if (project / "hypercorn.toml").is_file():
        config = "hypercorn.toml"
    return [python, "-m", "hypercorn", "--config", config, "--worker-class", "uvloop",
            "--bind", "127.0.0.1:{port}"]  # fmt: skip


def websockets_command(python: str) -> list[str]:
    """The baseline: bare ``websockets``, served from this repo."""
    return [python, "-m", "bench.peers.websockets_server", "{port}"]


def raw_uvicorn_command(python: str, app: str = RAW_APP) -> list[str]:
    """``app`` (the raw ASGI one) on uvicorn, set up as the template's ``__main__.py``."""
    uvicorn = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
    uvicorn += ["--ws", "websockets-sansio", "--ws-max-size", "1048576"]
    uvicorn += ["--ws-ping-interval", "20", "--ws-ping-timeout", "20"]
    return [*uvicorn, "--log-level", "warning", app]


def starlette_command(python: str) -> list[str]:
    """The Starlette peer on uvicorn, with the protocol the template's uvicorn setup uses."""
    uvicorn = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
    uvicorn += ["--ws", "websockets-sansio", "--ws-per-message-deflate", "false"]
    uvicorn += ["--no-access-log", "--log-level", "warning", "--loop", "asyncio"]
    return [*uvicorn, "bench.peers.starlette_app:app"]


def package_command(python: str, project: Path) -> list[str]:
    """A ``server=uvicorn`` render, served as its README says: ``python -m <package>``."""
    return [python, "-m", project.name.replace("-", "_"), "--port", "{port}"]


def stacks(project: Path, uvicorn_project: Path, redis_project: Path | None) -> list[Stack]:
    python, app = sys.executable, project.name.replace("-", "_") + ":app"
    hypercorn = hypercorn_command(python, project)
    chosen = [
        Stack(BASELINE, websockets_command(python), ROOT),
        Stack(STARLETTE, starlette_command(python), ROOT),
        Stack(HYPERCORN, [*hypercorn, app], project, rooms=True),
        # The render's own Hypercorn settings; bench/ importable from the render's folder.
        Stack(RAW_HYPERCORN, [*hypercorn, RAW_APP], project, env={"PYTHONPATH": str(ROOT)}),
        Stack(UVICORN, package_command(python, uvicorn_project), uvicorn_project, rooms=True),
        Stack(RAW_UVICORN, raw_uvicorn_command(python), ROOT),
        Stack(SEED_HYPERCORN, [*hypercorn, SEED_APP], project, env={"PYTHONPATH": str(ROOT)}),
        Stack(SEED_UVICORN, raw_uvicorn_command(python, SEED_APP), ROOT),
        Stack(
            "quart + hypercorn, asyncio loop",
            [*hypercorn, "--worker-class", "asyncio", app],
            project,
        ),
    ]
    if redis_project is not None:
        redis_app = redis_project.name.replace("-", "_") + ":app"
        redis_hypercorn = hypercorn_command(python, redis_project)
        chosen.append(Stack(REDIS, [*redis_hypercorn, redis_app], redis_project, rooms=True))
    return chosen


def newest_stacks(python: str, project: Path, uvicorn_project: Path) -> list[Stack]:
    """The baseline and the two offered setups again, on another interpreter."""
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    suffix = f", Python {version}"
    baseline = BASELINE + suffix
    app = project.name.replace("-", "_") + ":app"
    return [
        Stack(baseline, websockets_command(python), ROOT, baseline=baseline),
        Stack(
            HYPERCORN + suffix,
            [*hypercorn_command(python, project), app],
            project,
            baseline=baseline,
        ),
        Stack(
            UVICORN + suffix,
            package_command(python, uvicorn_project),
            uvicorn_project,
            baseline=baseline,
        ),
    ]


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free port for the redis backend's row, if one is installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield "redis://127.0.0.1:1/0"  # the redis row then reports a stall
        return
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen([*command, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def prepare_client() -> None:
    """As many sockets as the system allows (5,000 each side), on the client's core."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, CLIENT_CORE)


def targets_met(title: str, checks: list[tuple[str, bool]]) -> list[str]:
    """``title``, then each check's text marked met or not."""
    return [title, *(f"  [{'met' if ok else 'NOT met'}] {text}" for text, ok in checks)]


def pin_to_server_core() -> None:
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, SERVER_CORE)


def start(stack: Stack, port: int) -> subprocess.Popen[bytes]:
    command = [part.replace("{port}", str(port)) for part in stack.command]
    process = subprocess.Popen(
        command,
        cwd=stack.cwd,
        env={**os.environ, **stack.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pin_to_server_core,
        start_new_session=True,  # one process group: stopping it stops the workers
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{stack.name} did not listen on port {port}")


@contextmanager
def served(stack: Stack) -> Iterator[load.Server]:
    """``stack`` listening on a free port for the block, stopped however it ends."""
    port = free_port()
    process = start(stack, port)
    try:
        yield load.Server(port, process.pid)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


async def median_echo(server: load.Server, duration: float) -> dict[str, Any]:
    """Echo is cheap and the steadiest comparison: the median of three runs."""
    runs = [await load.echo(server, 50, duration) for _ in range(3)]
    return sorted(runs, key=lambda run: run["cpu_us"])[1]


async def measure(server: load.Server, quick: bool, rooms: bool) -> dict[str, Any]:
    """Every scenario, each bounded in time; one that stalls is recorded, not fatal."""
    scale = 0.4 if quick else 1.0
    scenarios: dict[str, tuple[Coroutine[Any, Any, dict[str, Any]], float]] = {
        "echo": (median_echo(server, 5 * scale), 3 * 120),
    }
    for subscribers, rate in ((100, 50), (1000, 10), (5000, 2)):
        scenario = load.fan_out(server, subscribers, rate, 5 * scale)
        scenarios[f"fan_out_{subscribers}"] = (scenario, 180)
    if rooms:
        room = load.fan_out(server, 1000, 10, 5 * scale, path="/ws/rooms/bench")
        scenarios["room_fan_out_1000"] = (room, 180)
        scenarios["resume_100"] = (load.resume(server), 60)
    scenarios["stalled"] = (load.stalled_subscriber(server, int(2000 * scale)), 60)
    results: dict[str, Any] = {}
    for name, (scenario, limit) in scenarios.items():
        try:
            results[name] = await asyncio.wait_for(scenario, limit)
        except TimeoutError:
            results[name] = {"error": f"no progress within {limit} s"}
        await asyncio.sleep(1)  # let the server drop the closed connections
    return results


def row(name: str, result: dict[str, Any], base: dict[str, Any]) -> str:
    def cell(scenario: str, template: str) -> str:
        figures = result.get(scenario, {})
        return "stalled" if "error" in figures else template.format(**figures)

    def cpu(scenario: str) -> str:
        figures, baseline = result.get(scenario, {}), base.get(scenario, {})
        if "error" in figures:
            return "stalled"
        if "cpu_us" not in baseline:
            return f"{figures['cpu_us']:.1f}"
        return f"{figures['cpu_us']:.1f} ({figures['cpu_us'] / baseline['cpu_us']:.2f}x)"

    return (
        f"| {name} | {cell('echo', '{per_second:.0f}')} "
        f"| {cell('echo', '{p50_ms:.2f}/{p99_ms:.2f}')} | {cpu('echo')} "
        f"| {cpu('fan_out_100')} | {cpu('fan_out_1000')} | {cpu('fan_out_5000')} "
        f"| {cell('fan_out_1000', '{p50_ms:.1f}/{p99_ms:.1f}, {loss}')} "
        f"| {cell('fan_out_5000', '{p99_ms:.1f}, {loss}')} "
        f"| {cell('fan_out_5000', '{idle_kib_each:.1f}')} "
        f"| {cell('stalled', '{growth_kib:.0f} of {sent_kib}')} |"
    )


HEADER = (
    "| server | echo rt/s | echo p50/p99 ms | echo CPU us/rt "
    "| CPU us/delivery, 100 subs | 1k subs | 5k subs "
    "| 1k subs at 10/s: p50/p99 ms, loss | 5k subs at 2/s: p99 ms, loss "
    "| idle KiB/conn | stalled subscriber: RSS growth KiB of KiB sent |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def table(results: dict[str, dict[str, Any]]) -> str:
    def base(result: dict[str, Any]) -> dict[str, Any]:
        return results.get(result.get("baseline", BASELINE), {})

    return "\n".join([HEADER, *(row(name, r, base(r)) for name, r in results.items())])


ROOMS_HEADER = (
    "| server | CPU us/delivery, 1k subs: /ws/broadcast | one room of 1k | room/broadcast "
    "| room 1k at 10/s: p50/p99 ms, loss | resume 100 missed: ms |\n|---|---|---|---|---|---|"
)


def rooms_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [ROOMS_HEADER]
    for name, result in results.items():
        room, plain = result.get("room_fan_out_1000"), result.get("fan_out_1000", {})
        if room is None:
            continue
        if "error" in room or "error" in plain:
            lines.append(f"| {name} | stalled | | | | |")
            continue
        resume = result.get("resume_100", {})
        lines.append(
            f"| {name} | {plain['cpu_us']:.1f} | {room['cpu_us']:.1f} "
            f"| {room['cpu_us'] / plain['cpu_us']:.2f}x "
            f"| {room['p50_ms']:.1f}/{room['p99_ms']:.1f}, {room['loss']} "
            f"| {resume.get('p50_ms', float('nan')):.1f} |"
        )
    return "\n".join(lines)


def cpu_ratio(results: dict[str, dict[str, Any]], stack: str, scenario: str) -> float:
    try:
        baseline = results[results[stack].get("baseline", BASELINE)]
        cpu: float = results[stack][scenario]["cpu_us"] / baseline[scenario]["cpu_us"]
    except KeyError:
        return float("nan")
    return cpu


@dataclass(frozen=True)
class Targets:
    """What one server should reach, in CPU as a ratio to bare websockets on the same Python."""

    echo: float
    delivery: float
    p99_1k_ms: float
    under_starlette: bool  # also below Starlette's ratios, echo and every delivery size
    p99_5k_ms: float = 150
    idle_kib: float = 40


UVICORN_TARGETS = Targets(echo=1.5, delivery=1.3, p99_1k_ms=30, under_starlette=True)
HYPERCORN_TARGETS = Targets(echo=2.0, delivery=2.0, p99_1k_ms=45, under_starlette=False)
SIZES = (100, 1000, 5000)
FAN_OUTS = tuple(f"fan_out_{n}" for n in SIZES)
RAW_LIMIT = 1.25  # what Quart and the template may add over their server


def cpu_over(results: dict[str, dict[str, Any]], stack: str, other: str, scenario: str) -> float:
    """``stack``'s CPU for ``scenario`` as a ratio to ``other``'s, in the same run."""
    try:
        cpu: float = results[stack][scenario]["cpu_us"] / results[other][scenario]["cpu_us"]
    except (KeyError, ZeroDivisionError):
        return float("nan")
    return cpu


def targets(results: dict[str, dict[str, Any]], stack: str) -> str:
    """The targets for one offered setup, each met or not."""
    goal = UVICORN_TARGETS if stack.startswith(UVICORN) else HYPERCORN_TARGETS
    mine = results.get(stack, {})
    nan = float("nan")
    echo = cpu_ratio(results, stack, "echo")
    delivery = {n: cpu_ratio(results, stack, f"fan_out_{n}") for n in SIZES}
    shown = " / ".join(f"{delivery[n]:.2f}x" for n in SIZES)
    checks = [
        (f"echo CPU <= {goal.echo}x bare websockets: {echo:.2f}x", echo <= goal.echo),
        (
            f"CPU per delivery <= {goal.delivery}x at 100 / 1k / 5k subscribers: {shown}",
            all(ratio <= goal.delivery for ratio in delivery.values()),
        ),
    ]
    raw = RAW_OF.get(stack)
    if raw in results:
        over = {s: cpu_over(results, stack, raw, s) for s in ("echo", *FAN_OUTS)}
        checks.append(
            (
                f"CPU <= {RAW_LIMIT}x the raw ASGI app on the same server, echo / deliveries at"
                " 100 / 1k / 5k: " + " / ".join(f"{ratio:.2f}x" for ratio in over.values()),
                all(ratio <= RAW_LIMIT for ratio in over.values()),
            )
        )
    seed = SEED_OF.get(stack)
    if seed in results:
        over = {s: cpu_over(results, stack, seed, s) for s in ("echo", *FAN_OUTS)}
        checks.append(
            (
                f"CPU <= {SEED_LIMIT}x Quart's own example on the same server, echo / deliveries"
                " at 100 / 1k / 5k: " + " / ".join(f"{ratio:.2f}x" for ratio in over.values()),
                all(ratio <= SEED_LIMIT for ratio in over.values()),
            )
        )
    if goal.under_starlette:
        theirs = {n: cpu_ratio(results, STARLETTE, f"fan_out_{n}") for n in SIZES}
        starlette_echo = cpu_ratio(results, STARLETTE, "echo")
        checks += [
            (
                f"echo CPU below Starlette's: {echo:.2f}x vs {starlette_echo:.2f}x",
                echo < starlette_echo,
            ),
            (
                "CPU per delivery below Starlette's at every size: Starlette "
                + " / ".join(f"{theirs[n]:.2f}x" for n in SIZES),
                all(delivery[n] < theirs[n] for n in SIZES),
            ),
        ]
    for subscribers, limit in ((1000, goal.p99_1k_ms), (5000, goal.p99_5k_ms)):
        fan_out = mine.get(f"fan_out_{subscribers}", {})
        loss, p99 = fan_out.get("loss"), fan_out.get("p99_ms", nan)
        checks.append(
            (
                f"{subscribers} subscribers: loss {loss}, p99 {p99:.1f} ms (< {limit:.0f} ms)",
                loss == 0 and p99 < limit,
            )
        )
    idle = mine.get("fan_out_5000", {}).get("idle_kib_each", nan)
    checks.append(
        (f"idle connection {idle:.1f} KiB (< {goal.idle_kib:.0f} KiB)", idle < goal.idle_kib)
    )
    if "room_fan_out_1000" in mine:
        room = mine["room_fan_out_1000"].get("cpu_us", nan)
        plain = mine.get("fan_out_1000", {}).get("cpu_us", nan)
        checks.append(
            (
                f"room fan-out CPU per delivery {room:.1f} us <= /ws/broadcast's {plain:.1f} us"
                " (+10 % for noise)",
                room <= plain * 1.1,
            )
        )
    stalled = mine.get("stalled", {})
    bound = stalled.get("queue_bound_kib", 0)
    checks.append(
        (
            f"stalled subscriber grew RSS {stalled.get('growth_kib', nan):.0f} KiB "
            f"(bound: its queue and write buffer, {bound} KiB)",
            stalled.get("growth_kib", 1e9) <= bound,
        )
    )
    return "\n".join(targets_met(f"targets for {stack}:", checks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path, required=True, help="the server=hypercorn render")
    parser.add_argument(
        "--uvicorn-project", type=Path, required=True, help="a render with server=uvicorn"
    )
    parser.add_argument(
        "--redis-project", type=Path, help="a render with broadcast_backend=redis (optional)"
    )
    parser.add_argument(
        "--newest-python", help="a python with the renders installed: rows for it too"
    )
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--quick", action="store_true", help="shorter runs, for a smoke test")
    parser.add_argument("--only", help="run only the stacks whose name contains this")
    args = parser.parse_args()

    prepare_client()

    results: dict[str, dict[str, Any]] = {}
    project, uvicorn_project = args.project.resolve(), args.uvicorn_project.resolve()
    redis_project = args.redis_project.resolve() if args.redis_project else None
    chosen = stacks(project, uvicorn_project, redis_project)
    if args.newest_python:
        chosen += newest_stacks(args.newest_python, project, uvicorn_project)
    print(f"bench client and first rows: Python {platform.python_version()}", flush=True)
    with redis_server() as redis_url:
        for stack in chosen:
            if args.only and args.only not in stack.name and stack.name != stack.baseline:
                continue
            stack.env.update(BENCH_ENV, QUART_REDIS_URL=redis_url)
            print(f"-- {stack.name}", flush=True)
            with served(stack) as server:
                results[stack.name] = asyncio.run(measure(server, args.quick, stack.rooms))
                results[stack.name]["baseline"] = stack.baseline
    print(table(results))
    print()
    print(rooms_table(results))
    for name in results:
        if name.startswith(OFFERED):
            print(targets(results, name))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
