"""What quart_internals.py relies on, checked against the installed Quart.

Each test fails loudly the day a Quart release changes one of those
assumptions; the whole file runs on every Python and Quart the project allows.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from quart import Quart, websocket

from {{ cookiecutter.package_name }}.quart_internals import (
    RECANCEL_SECONDS,
    RECEIVE_QUEUE_SIZE,
    DirectSendWebsocket,
    WebsocketConnection,
    use_quart_internals,
)

from .asgi_websocket import asgi_connect, websocket_scope
from .helpers import AppFactory, wait_for

BURST = 20


def app_with_route(*, internals: bool) -> Quart:
    """A bare app, with or without this project's classes, and a handler that never reads."""
    app = Quart(__name__)
    if internals:
        use_quart_internals(app)

    @app.websocket("/never-reads")
    async def never_reads() -> None:
        await websocket.accept()
        await asyncio.Event().wait()

    return app


async def run_flood(app: Quart, messages: int) -> int:
    """Offer ``messages`` to the app without it reading; return how many it took."""
    taken = 0

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if taken == 0:
            taken = 1
            return {"type": "websocket.connect"}
        if taken > messages:
            await asyncio.Event().wait()
        taken += 1
        return {"type": "websocket.receive", "text": "x"}

    async def send(event: dict[str, Any]) -> None:
        pass

    task = asyncio.create_task(app(websocket_scope("/never-reads", {}), receive, send))  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return taken - 1


async def test_quart_reads_a_client_only_as_fast_as_the_bounded_queue_allows() -> None:
    taken = await run_flood(app_with_route(internals=True), 1000)
    # The bound, plus the message that waits on a full queue.
    assert taken <= RECEIVE_QUEUE_SIZE + 1


async def test_quart_alone_still_buffers_without_bound() -> None:
    """If this fails, Quart bounds its own queue and the override can go."""
    assert await run_flood(app_with_route(internals=False), 1000) == 1000


async def test_quart_alone_still_loses_an_empty_binary_message() -> None:
    """If this fails, Quart keeps ``b""`` itself and ``keep_empty_bytes`` can go."""
    app = app_with_route(internals=False)

    @app.websocket("/echo")
    async def echo() -> None:
        await websocket.send(await websocket.receive())

    # Quart reads ``event.get("bytes") or event["text"]``: an event with empty
    # bytes and no text (uvicorn's, and this test's) is a KeyError.
    with pytest.raises((KeyError, ExceptionGroup)) as raised:  # 0.23: in a TaskGroup's
        async with asgi_connect(app, "/echo") as ws:
            await ws.send(b"")
            await ws.receive()
    error = raised.value
    errors = error.exceptions if isinstance(error, ExceptionGroup) else (error,)
    assert [type(each) for each in errors] == [KeyError] and errors[0].args == ("text",)


async def test_the_connection_ends_when_the_handler_leaves_a_full_queue_behind() -> None:
    app = app_with_route(internals=True)

    @app.websocket("/returns")
    async def returns() -> None:
        await websocket.accept()

    async with asgi_connect(app, "/returns") as ws:
        for _ in range(RECEIVE_QUEUE_SIZE * 3):
            await ws.send("never read")
    # asgi_connect fails the test if the app has not ended after the disconnect.


async def read_after_the_handler(app: Quart, messages: int) -> int:
    """Offer ``messages`` to a handler that closes at once, then disconnect.

    Return how many the app took before it returned: a real server holds the
    rest in its own queue and waits until they are taken (Hypercorn does).
    """
    taken = 0

    @app.websocket("/closes")
    async def closes() -> None:
        await websocket.accept()
        await websocket.close(1008, "no")

    async def receive() -> dict[str, Any]:
        nonlocal taken
        taken += 1
        if taken == 1:
            return {"type": "websocket.connect"}
        if taken > messages + 1:
            return {"type": "websocket.disconnect", "code": 1000}
        await asyncio.sleep(0.001)  # a backlog that arrives after the close
        return {"type": "websocket.receive", "text": "x"}

    async def send(event: dict[str, Any]) -> None:
        pass

    await asyncio.wait_for(app(websocket_scope("/closes", {}), receive, send), 10)  # type: ignore[arg-type]
    return taken - 2  # the connect and the disconnect


async def test_the_app_reads_until_the_disconnect_after_its_handler_ends() -> None:
    assert await read_after_the_handler(app_with_route(internals=True), 200) == 200


async def test_quart_alone_stops_reading_when_the_handler_ends_up_to_0_22() -> None:
    """If this fails on Python 3.11-3.12, Quart reads on itself and the loop in
    ``WebsocketConnection.__call__`` can go; on 3.13 (Quart 0.23) it does."""
    taken = await read_after_the_handler(app_with_route(internals=False), 200)
    if sys.version_info >= (3, 13):
        assert taken == 200
    else:
        assert taken < 200


async def turns_during_a_burst(app: Quart) -> int:
    """How often the event loop ran another task while a handler sent ``BURST`` messages."""
    turns = 0
    turns_during_burst: list[int] = []

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    @app.websocket("/burst")
    async def burst() -> None:
        await websocket.accept()
        await websocket.accept()  # a no-op once accepted: the direct send relies on it
        before = turns
        for number in range(BURST):
            await websocket.send(str(number))
        turns_during_burst.append(turns - before)

    counter = asyncio.create_task(count_turns())
    try:
        async with asgi_connect(app, "/burst") as ws:
            await ws.accepted()
            events = [await ws.next_event() for _ in range(BURST)]
            await wait_for(lambda: bool(turns_during_burst))
    finally:
        counter.cancel()
    # One accept, then the messages whole and in order.
    assert [(event["type"], event["text"]) for event in events] == [
        ("websocket.send", str(number)) for number in range(BURST)
    ]
    return turns_during_burst[0]


async def test_a_burst_of_sends_arrives_whole_and_in_order_without_yielding(
    make_app: AppFactory,
) -> None:
    assert await turns_during_a_burst(await make_app()) == 0


async def test_quart_alone_still_yields_before_every_send() -> None:
    """If this fails, Quart's ``send`` no longer yields each time: measure it again
    against ``DirectSendWebsocket.send`` (the template's paired bench); it may go."""
    assert await turns_during_a_burst(app_with_route(internals=False)) >= BURST


async def test_receive_accepts_the_connection_once(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_app()
    accepts = 0
    quarts_accept = DirectSendWebsocket.accept

    async def counted_accept(self: DirectSendWebsocket, *args: Any, **kwargs: Any) -> None:
        nonlocal accepts
        accepts += 1
        await quarts_accept(self, *args, **kwargs)

    monkeypatch.setattr(DirectSendWebsocket, "accept", counted_accept)
    received: list[str | bytes] = []

    @app.websocket("/listen")
    async def listen() -> None:  # accepts by its first receive, as Quart allows
        for _ in range(3):
            received.append(await websocket.receive())

    async with asgi_connect(app, "/listen") as ws:
        for number in range(3):
            await ws.send(str(number))
        await wait_for(lambda: len(received) == 3)
    assert received == ["0", "1", "2"]
    assert accepts == 1  # Quart's own receive accepts before every message


@pytest.mark.parametrize("message", [b"", "", b"\x00", "text"])
async def test_every_message_reaches_the_handler_unchanged(
    make_app: AppFactory, message: str | bytes
) -> None:
    app = await make_app()
    async with asgi_connect(app, "/ws") as ws:
        await ws.send(message)
        reply = await ws.receive()
    assert reply == message
    assert type(reply) is type(message)


@pytest.fixture
def cycle_garbage() -> Iterator[list[Any]]:
    """What the garbage collector finds in reference cycles during the test, kept to look at."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize(
    "route",
    [
        "/ws",
{%- if cookiecutter.broadcast %}
        "/ws/broadcast",
        "/ws/rooms/lobby",
{%- endif %}
    ],
)
async def test_a_closed_connection_leaves_no_reference_cycle(
    make_app: AppFactory, route: str, cycle_garbage: list[Any]
) -> None:
    # In a cycle, all a socket held (some 110 objects) would wait for the next
    # full collection, which walks every open socket's objects.
    app = await make_app()
    async with asgi_connect(app, route) as ws:
        await ws.send("hello")
        while "hello" not in str(await ws.receive()):
            pass  # a room may first send who is in it
    # The client went away while the handler waited on a receive: Quart cancelled it.
    await asyncio.sleep(3 * RECANCEL_SECONDS)  # until its last guard (Quart up to 0.22) ran
    gc.collect()
    assert not [o for o in cycle_garbage if isinstance(o, WebsocketConnection)]
