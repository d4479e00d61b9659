"""Users in a real Chromium: two people log in, see each other, talk, leave."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from ...servers import LiveServer
from ..pages import open_connected, send

pytestmark = pytest.mark.browser


def test_two_users_see_each_other_talk_and_one_leaves(browser: Browser, server: LiveServer) -> None:
    url = f"{server.http_url}/?channel=rooms&room=garden"
    alice = open_connected(browser, url, user="alice")
    bob = open_connected(browser, url, user="bob")
    expect(alice.locator("#me")).to_have_text("alice")
    expect(alice.locator("#presence li")).to_have_text(["alice", "bob"])
    expect(bob.locator("#presence li")).to_have_text(["alice", "bob"])

    send(alice, "hello bob")
    message = bob.locator("#log .received")
    expect(message).to_have_text(["hello bob"])
    expect(message).to_have_attribute("data-from", "alice")

    carol = open_connected(browser, url, user="carol")
    alice.fill("#direct-to", "bob")
    alice.fill("#direct-text", "just for you")
    alice.click("#direct-send")
    expect(bob.locator("#inbox .received")).to_have_text(["just for you"])
    expect(bob.locator("#inbox .received")).to_have_attribute("data-from", "alice")
    expect(alice.locator("#inbox .sent")).to_have_text(["just for you"])
    expect(carol.locator("#inbox li")).to_have_count(0)

    bob.close()
    expect(alice.locator("#presence li")).to_have_text(["alice", "carol"])


def test_a_visitor_gets_the_demo_login_form_then_joins_the_lobby(
    browser: Browser, server: LiveServer
) -> None:
    page = browser.new_page()  # not logged in
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"{server.http_url}/?channel=rooms&room=garden")  # returns once scripts ran
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#status")).to_have_text("disconnected (log in to use this channel)")
    assert sockets == []  # a socket would be refused, then retried for good
    page.fill("#login-name", "dora")
    page.click("#login")
    expect(page.locator("#me")).to_have_text("dora")
    expect(page.locator("#status")).to_have_text("connected")
    expect(page.locator("#presence li")).to_have_text(["dora"])
    assert any("/ws/rooms/" in url for url in sockets)  # the socket opened once logged in
