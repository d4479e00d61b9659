"""A short soak: misbehaving connections leave nothing behind.

``python -m tests.broadcast.soak`` runs 10,000.

Memory is printed, not asserted: 500 cycles do not settle the
allocator. ``python -m tests.broadcast.soak`` checks it too.
"""

from __future__ import annotations

import pytest

from ..servers import SERVERS, run_server
from .soak import SERVER_OPTIONS, report, server_env, soak


@pytest.mark.parametrize("server", SERVERS)
async def test_a_short_soak_leaks_nothing_and_loses_nothing(server: str) -> None:
    options = SERVER_OPTIONS[server]
    with run_server(server=server, env=server_env(), options=options, metrics=True) as live:
        figures = await soak(live, cycles=500, steady=20, path="/ws/broadcast")
    print(report(figures))
    assert figures["leaks"] == []
