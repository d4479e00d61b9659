"""A short soak: misbehaving connections leave nothing behind (``nox -s soak``: 10,000).

Memory is printed, not asserted: a thousand cycles do not settle the allocator,
and under Hypercorn closed websockets stay in memory until their next ping
(see the Operate section of README.md). ``python -m tests.soak`` checks it.
"""

from __future__ import annotations

from .servers import run_server
from .soak import SERVER_OPTIONS, report, server_env, soak


async def test_a_short_soak_leaks_nothing_and_loses_nothing() -> None:
    with run_server(env=server_env(), options=SERVER_OPTIONS["hypercorn"]) as server:
        figures = await soak(server, cycles=1000, steady=20, path="/ws/broadcast")
    print(report(figures))
    assert figures["leaks"] == []
