"""Serve the app in production with uvicorn: ``python -m {{ cookiecutter.package_name }}``.

The settings live here rather than on a command line, so that production and
the tests run the same configuration.
"""

from __future__ import annotations

import argparse

import uvicorn

from . import app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}", description="Serve the app with uvicorn."
    )
    # Behind a reverse proxy on the same host; use --host 0.0.0.0 in a container.
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000")
    parser.add_argument("--workers", type=int, default=1, help="processes, default: 1")
    parser.add_argument(
        "--graceful-timeout", type=float, default=5.0, metavar="SECONDS", help="default: 5"
    )
    args = parser.parse_args(argv)
{%- if cookiecutter.broadcast and cookiecutter.broadcast_backend == "memory" %}
    if args.workers > 1:
        # Each worker would have its own clients, and a broadcast reach only some.
        parser.error(
            "--workers: the memory broadcast backend serves one process only;"
            " regenerate the project with broadcast_backend=redis to run more"
        )
{%- endif %}
    uvicorn.run(
        f"{__package__}:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        # websockets' sans-I/O protocol: the cheapest websocket path measured
        # for Quart (the template's benchmark). uvloop is picked by
        # itself where it is installed.
        ws="websockets-sansio",
        # Larger messages close the connection with 1009.
        ws_max_size=app.config["MAX_MESSAGE_SIZE"],
        # Keepalive: a peer that does not answer a ping in time is closed (1011).
        ws_ping_interval=app.config["PING_INTERVAL"],
        ws_ping_timeout=app.config["PING_TIMEOUT"],
        # On SIGTERM uvicorn closes websockets with 1012 (service restart) at
        # once, then gives requests this long to finish.
        timeout_graceful_shutdown=args.graceful_timeout,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
