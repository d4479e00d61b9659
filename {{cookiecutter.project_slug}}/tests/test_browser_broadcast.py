"""Two pages on the broadcast channel see each other's messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from .browser import browser, open_page, send
from .live_server import LiveServer, run_server

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, imported for pytest


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with run_server() as server:
        yield server


def test_a_message_sent_in_one_page_appears_in_the_other(
    browser: Browser, server: LiveServer
) -> None:
    url = f"{server.http_url}/?channel=broadcast"
    alice, bob = open_page(browser, url).page, open_page(browser, url).page
    for page in (alice, bob):
        expect(page.locator("#status")).to_have_text("connected")
    send(alice, "hello from alice")
    expect(bob.locator("#log .received")).to_have_text(["hello from alice"])
    expect(alice.locator("#log .received")).to_have_text(["hello from alice"])
