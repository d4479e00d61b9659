"""Users against real server processes over real TCP, under each server."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from ..helpers import connect
from ..servers import SERVERS, run_server
from .tickets import ticket_header


@pytest.mark.parametrize("server", SERVERS)
async def test_credentials_and_the_per_user_cap_are_checked_before_accept(server: str) -> None:
    with run_server(server=server, env={"QUART_CONNECTIONS_PER_USER": "2"}) as live:
        url = live.ws_url + "/ws/inbox"
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers={}).__aenter__()
        assert refused.value.response.status_code == 401
        async with (
            connect(url, additional_headers=ticket_header("bob")),
            connect(url, additional_headers=ticket_header("bob")),
        ):
            with pytest.raises(InvalidStatus) as capped:
                await connect(url, additional_headers=ticket_header("bob")).__aenter__()
            assert capped.value.response.status_code == 429
            async with connect(url, additional_headers=ticket_header("alice")) as alice:
                await alice.ping()  # another user is let in
