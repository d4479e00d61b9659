"""Paired rounds: serve a few stacks in turn, several times, and compare medians.

    python -m bench.paired [--python PY] [--rounds 4] [--subscribers 1000]
                           [--rate 10] [--duration 8] [--path /ws/broadcast]
                           bare starlette seed uvicorn:<render> hypercorn:<render> ...

A full run (``bench.run``) serves each stack once, and its figures move by
10-20 % from run to run. To tell whether a change helped, serve the versions
side by side instead: each round serves every stack once, in turn, and each
stack's ratio to ``bare`` is taken within its round. ``<render>`` is a
rendered project's folder (render two versions under different folders with
the same answers); it is served from that folder, which comes first on
``sys.path``, so installed copies do not matter. ``--subscribers 0`` measures
echo instead of fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

from . import load, run


def stack(spec: str, python: str) -> run.Stack:
    """``bare``, ``starlette``, ``seed``, or ``uvicorn:<render>`` / ``hypercorn:<render>``."""
    if spec == "bare":
        return run.Stack(spec, run.websockets_command(python), run.ROOT)
    if spec == "starlette":
        return run.Stack(spec, run.starlette_command(python), run.ROOT)
    if spec == "seed":  # Quart's own websocket example, on uvicorn
        return run.Stack(spec, run.raw_uvicorn_command(python, run.SEED_APP), run.ROOT)
    server, _, folder = spec.partition(":")
    render = Path(folder).resolve()
    env = dict(run.BENCH_ENV)
    if server == "uvicorn":
        return run.Stack(spec, run.package_command(python, render), render, env=env)
    if server == "hypercorn":
        app = render.name.replace("-", "_") + ":app"
        return run.Stack(spec, [*run.hypercorn_command(python, render), app], render, env=env)
    raise SystemExit(f"unknown stack {spec!r}: see --help")


def measure(chosen: run.Stack, args: argparse.Namespace) -> float:
    """Server CPU per delivery (or per echo round trip), in microseconds."""
    with run.served(chosen) as server:
        if args.subscribers == 0:
            result = asyncio.run(run.median_echo(server, args.duration))
        else:
            scenario = load.fan_out(server, args.subscribers, args.rate, args.duration, args.path)
            result = asyncio.run(scenario)
            if result["loss"]:
                print(f"  {chosen.name}: lost {result['loss']} deliveries", file=sys.stderr)
    return float(result["cpu_us"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__)
    parser.add_argument(
        "stacks", nargs="+", help="bare, starlette, seed, uvicorn:<render>, hypercorn:<render>"
    )
    parser.add_argument("--python", default=sys.executable, help="the servers' interpreter")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--subscribers", type=int, default=1000, help="0: echo")
    parser.add_argument("--rate", type=float, default=10, help="broadcasts a second")
    parser.add_argument("--duration", type=float, default=8, help="seconds per stack")
    parser.add_argument("--path", default="/ws/broadcast", help="or /ws/rooms/<name>")
    args = parser.parse_args()
    specs = args.stacks if "bare" in args.stacks else ["bare", *args.stacks]
    chosen = [stack(spec, args.python) for spec in specs]
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, run.CLIENT_CORE)
    figures: dict[str, list[float]] = {spec: [] for spec in specs}
    for number in range(args.rounds):
        for spec, each in zip(specs, chosen, strict=True):
            figures[spec].append(measure(each, args))
            print(f"round {number + 1}: {spec} {figures[spec][-1]:.1f} us", file=sys.stderr)
    print("| stack | median us | ratio to bare, median | each round |")
    print("|---|---|---|---|")
    for spec, values in figures.items():
        ratios = [value / base for value, base in zip(values, figures["bare"], strict=True)]
        each = ", ".join(f"{value:.1f}" for value in values)
        print(
            f"| {spec} | {statistics.median(values):.1f} "
            f"| {statistics.median(ratios):.2f}x | {each} |"
        )


if __name__ == "__main__":
    main()
