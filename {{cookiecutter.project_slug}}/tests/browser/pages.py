"""Pages in a real Chromium, driven by Playwright: open, watch, type and send."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

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


def open_page(browser: Browser, url: str) -> WatchedPage:
    watched = WatchedPage(browser.new_page())

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


def open_connected(browser: Browser, url: str) -> Page:
    """A page of ``url`` whose websocket is connected."""
    page = open_page(browser, url).page
    expect(page.locator("#status")).to_have_text("connected")
    return page


def send(page: Page, text: str, *, press_enter: bool = False) -> None:
    page.fill("#message", text)
    if press_enter:
        page.press("#message", "Enter")
    else:
        page.click("#send")
