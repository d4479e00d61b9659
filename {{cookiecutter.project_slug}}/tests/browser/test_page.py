"""The page in a real Chromium: status, echo, no injected markup, reconnection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from ..servers import LiveServer, free_port, run_server
from .pages import open_page, send

pytestmark = pytest.mark.browser

# The client's retry delay tops out at 4 s (with jitter): 10 s leaves room.
RECONNECT_WITHIN_MS = 10_000


def test_page_connects_and_echoes(browser: Browser, server: LiveServer, tmp_path: Path) -> None:
    watched = open_page(browser, server.http_url)
    page = watched.page
    expect(page.locator("#status")).to_have_text("connected")
    assert watched.errors == []

    send(page, "typed and sent with Enter", press_enter=True)
    expect(page.locator("#log .received")).to_have_text(["typed and sent with Enter"])
    send(page, "sent with the button")
    expect(page.locator("#log .received").last).to_have_text("sent with the button")

    screenshot = Path(os.environ.get("SCREENSHOT_PATH") or tmp_path / "page.png")
    page.screenshot(path=screenshot, full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 0
    assert watched.errors == []


def test_markup_in_a_message_stays_text(browser: Browser, server: LiveServer) -> None:
    watched = open_page(browser, server.http_url)
    page = watched.page
    expect(page.locator("#status")).to_have_text("connected")
    attack = "<img src=x onerror=alert(1)>"
    send(page, attack)
    expect(page.locator("#log .received")).to_have_text([attack])
    assert page.locator("#log img").count() == 0
    # A round trip later, an injected handler would have fired by now.
    send(page, "after it")
    expect(page.locator("#log .received")).to_have_text([attack, "after it"])
    assert watched.dialogs == []


def test_page_reconnects_after_a_server_restart(browser: Browser) -> None:
    port = free_port()
    with run_server(port=port, options=("--graceful-timeout", "1")):
        watched = open_page(browser, f"http://127.0.0.1:{port}")
        page = watched.page
        status = page.locator("#status")
        expect(status).to_have_text("connected")
        send(page, "before")
        expect(page.locator("#log .received")).to_have_text(["before"])

    expect(status).to_have_attribute("data-state", "disconnected")
    with run_server(port=port):
        expect(status).to_have_text("connected", timeout=RECONNECT_WITHIN_MS)
        send(page, "after")
        expect(page.locator("#log .received")).to_have_text(["before", "after"])
