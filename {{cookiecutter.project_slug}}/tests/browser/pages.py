"""Pages in a real Chromium, driven by Playwright: open, watch, type and send."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
{%- if cookiecutter.users %}
from itertools import count
from urllib.parse import urlsplit
{%- endif %}

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect

# Flags for a headless Chromium on a machine with no network beyond localhost.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if path is None:
        reason = "no Chromium: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@dataclass
class WatchedPage:
    """A page that records console errors and dialogs (an injected alert)."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


{% if cookiecutter.users -%}
TESTERS = count()


def log_in(page: Page, url: str, user: str | None = None) -> None:
    """Log the page's context in through the demo login (conftest.py turns it on)."""
    parts = urlsplit(url)
    name = user or f"tester-{next(TESTERS)}"
    response = page.request.post(f"{parts.scheme}://{parts.netloc}/login", form={"name": name})
    assert response.ok, response.status


{% endif -%}
def open_page(browser: Browser, url: str{% if cookiecutter.users %}, user: str | None = None{% endif %}) -> WatchedPage:
    watched = WatchedPage(browser.new_page())
{%- if cookiecutter.users %}
    log_in(watched.page, url, user)  # each page is a context of its own: a user of its own
{%- endif %}

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    watched.page.on("console", on_console)
    watched.page.on("pageerror", lambda error: watched.errors.append(str(error)))
    watched.page.on("dialog", on_dialog)
    watched.page.goto(url)
    return watched


def open_connected(browser: Browser, url: str{% if cookiecutter.users %}, user: str | None = None{% endif %}) -> Page:
    """A page of ``url`` whose websocket is connected."""
    page = open_page(browser, url{% if cookiecutter.users %}, user{% endif %}).page
    expect(page.locator("#status")).to_have_text("connected")
    return page


def send(page: Page, text: str, *, press_enter: bool = False) -> None:
    page.fill("#message", text)
    if press_enter:
        page.press("#message", "Enter")
    else:
        page.click("#send")
