"""The page and the health check."""

from __future__ import annotations

from quart.typing import TestClientProtocol as Client


async def test_index_serves_the_client_page(client: Client) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    for element in ('id="log"', 'id="message"', 'id="send"', 'id="status"'):
        assert element in page
    assert 'data-socket-path="/ws"' in page
    assert "/static/js/page.js" in page


async def test_static_client_script_is_served(client: Client) -> None:
    response = await client.get("/static/js/client.js")
    assert response.status_code == 200
    script = await response.get_data(as_text=True)
    assert "location.protocol" in script  # wss: under https, never a hardcoded ws:


async def test_unknown_channel_is_404(client: Client) -> None:
    response = await client.get("/?channel=nope")
    assert response.status_code == 404


async def test_healthz(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "ok"
