"""Two pages on the broadcast channel see each other's messages."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from ...servers import LiveServer
from ..pages import open_connected, send

pytestmark = pytest.mark.browser


def test_a_message_sent_in_one_page_appears_in_the_other(
    browser: Browser, server: LiveServer
) -> None:
    url = f"{server.http_url}/?channel=broadcast"
    alice, bob = open_connected(browser, url), open_connected(browser, url)
    send(alice, "hello from alice")
    expect(bob.locator("#log .received")).to_have_text(["hello from alice"])
    expect(alice.locator("#log .received")).to_have_text(["hello from alice"])
