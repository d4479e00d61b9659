"""An in-process websocket client that speaks plain ASGI to the app.

Quart's own test client hides the close code since Quart 0.23 (its
``receive()`` then waits forever after a close). This client uses only the
ASGI specification, so it behaves the same on every Quart release: it
returns what the app sends, raises ``Closed`` with the code when the app
closes, and ``Refused`` with the HTTP status when the app refuses the
handshake.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

from quart import Quart
{%- if cookiecutter.users %}

from .users.tickets import ticket_header
{%- endif %}

Event = dict[str, Any]
TIMEOUT = 5.0


class Closed(Exception):
    """The app closed the websocket."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class Refused(Exception):
    """The app answered the handshake with an HTTP response instead of accepting."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body


class AsgiWebsocket:
    """One websocket connection to an app, without a server or a socket."""

    def __init__(self) -> None:
        self.to_app: asyncio.Queue[Any] = asyncio.Queue()
        self.from_app: asyncio.Queue[Any] = asyncio.Queue()
        self.closed: Closed | None = None

    async def send(self, message: str | bytes) -> None:
        key = "text" if isinstance(message, str) else "bytes"
        await self.to_app.put({"type": "websocket.receive", key: message})

    async def receive(self) -> str | bytes:
        """The next message from the app; ``Closed`` or ``Refused`` if there is none."""
        while True:
            if self.closed is not None:
                raise self.closed
            event = await self.next_event()
            if event["type"] == "websocket.send":
                has_text = event.get("text") is not None
                message: str | bytes = event["text"] if has_text else event["bytes"]
                return message
            if event["type"] == "websocket.close":
                self.closed = Closed(event.get("code", 1000), event.get("reason") or "")
            elif event["type"] == "websocket.http.response.start":
                headers = {name.decode(): value.decode() for name, value in event["headers"]}
                raise Refused(event["status"], headers, await self.response_body())

    async def accepted(self) -> None:
        """Wait until the app accepts the handshake; ``Refused`` if it answers instead."""
        while (event := await self.next_event())["type"] != "websocket.accept":
            if event["type"] == "websocket.http.response.start":
                headers = {name.decode(): value.decode() for name, value in event["headers"]}
                raise Refused(event["status"], headers, await self.response_body())

    async def next_event(self) -> Event:
        async with asyncio.timeout(TIMEOUT):
            event: Event = await self.from_app.get()
            return event

    async def response_body(self) -> bytes:
        body = b""
        while True:
            event = await self.next_event()
            body += bytes(event.get("body", b""))
            if not event.get("more_body", False):
                return body


def websocket_scope(url: str, headers: dict[str, str]) -> Event:
    parts = urlsplit(url)
    header_list = [(b"host", b"localhost")]
    header_list += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": header_list,
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }


@asynccontextmanager
async def asgi_connect(
    app: Quart, url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[AsgiWebsocket]:
    """Open ``url`` (a path with an optional query) on ``app``; disconnect on exit."""
    ws = AsgiWebsocket()
    await ws.to_app.put({"type": "websocket.connect"})
{%- if cookiecutter.users %}
    if headers is None and app.secret_key:  # a new user, with a ticket from the app's key
        headers = ticket_header(key=str(app.secret_key))
{%- endif %}
    scope = websocket_scope(url, headers or {})
    task = asyncio.create_task(app(scope, ws.to_app.get, ws.from_app.put))  # type: ignore[arg-type]
    try:
        yield ws
    finally:
        await ws.to_app.put({"type": "websocket.disconnect", "code": 1000})
        done, _ = await asyncio.wait({task}, timeout=TIMEOUT)
        if not done:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            raise AssertionError(f"the app did not end the websocket {url} after a disconnect")
        task.result()  # an exception in the app fails the test
