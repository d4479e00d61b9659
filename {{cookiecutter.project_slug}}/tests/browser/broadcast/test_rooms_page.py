"""Rooms in a real Chromium: two pages in one room, one leaves and comes back."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from ...servers import LiveServer, run_server
from ..pages import open_connected, open_page, send

pytestmark = pytest.mark.browser


@pytest.fixture
def small_history_server() -> Iterator[LiveServer]:
    with run_server(env={"QUART_ROOM_HISTORY": "3"}) as server:
        yield server


def test_a_page_that_comes_back_shows_what_it_missed(
    browser: Browser, small_history_server: LiveServer
) -> None:
    url = f"{small_history_server.http_url}/?channel=rooms&room=garden"
    alice, bob = open_connected(browser, url), open_connected(browser, url)
    send(alice, "hello bob")
    expect(bob.locator("#log .received")).to_have_text(["hello bob"])

    bob.goto("about:blank")  # away; the tab keeps its last id
    for number in range(2):
        send(alice, f"while away {number}")
    expect(alice.locator("#log .received")).to_have_count(3)
    bob.goto(url)
    expect(bob.locator("#log .received")).to_have_text(["while away 0", "while away 1"])
    expect(bob.locator("#log .notice")).to_have_count(0)  # nothing was lost

    bob.goto("about:blank")
    for number in range(5):  # more than the room keeps (3)
        send(alice, f"too many {number}")
    expect(alice.locator("#log .received")).to_have_count(8)
    bob.goto(url)
    expect(bob.locator("#log .notice")).to_have_text(
        ["Some messages were missed while you were away."]
    )
    expect(bob.locator("#log .received")).to_have_text(["too many 2", "too many 3", "too many 4"])
    expect(bob.locator("#status")).to_have_text("connected")


def test_the_room_form_joins_the_typed_room(browser: Browser, server: LiveServer) -> None:
    page = open_page(browser, f"{server.http_url}/?channel=rooms").page
    expect(page.locator("#room")).to_have_value("lobby")
    page.fill("#room", "kitchen")
    page.click("#join")
    expect(page).to_have_url(f"{server.http_url}/?channel=rooms&room=kitchen")
    expect(page.locator("#status")).to_have_text("connected")
    send(page, "in the kitchen")
    expect(page.locator("#log .received")).to_have_text(["in the kitchen"])


def test_a_page_whose_server_falls_silent_reconnects(browser: Browser) -> None:
    with run_server(env={"QUART_PING_INTERVAL": "1"}) as server:
        page = open_page(browser, f"{server.http_url}/?channel=rooms&room=quiet").page
        status = page.locator("#status")
        expect(status).to_have_text("connected")
        os.killpg(server.process.pid, signal.SIGSTOP)  # alive, connected, and mute
        try:
            # Without the heartbeat the socket would stay open, and "connected".
            expect(status).not_to_have_text("connected", timeout=8_000)
        finally:
            os.killpg(server.process.pid, signal.SIGCONT)
        expect(status).to_have_text("connected", timeout=15_000)
