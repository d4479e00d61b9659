"""Fixtures of the opt-in browser tests (``pytest -m browser``).

Set CHROMIUM_PATH to use a browser other than ``chromium`` on PATH; Playwright's
own browser download is not needed. REQUIRE_BROWSER=1 turns a missing browser
from a skip into a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from ..servers import LiveServer, run_server
from .pages import CHROMIUM_ARGS, chromium_path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


{% if cookiecutter.users -%}
@pytest.fixture(autouse=True)
def demo_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers of the browser tests let pages log in by name (users/login.py)."""
    monkeypatch.setenv("QUART_DEMO_LOGIN", "1")


{% endif -%}
@pytest.fixture
def server() -> Iterator[LiveServer]:
    """The app under its production server, as deployed."""
    with run_server() as server:
        yield server
