"""The outbox: messages sent as delivered, in order, bounded while a send waits."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import CollectorRegistry, Counter

from {{ cookiecutter.package_name }}.broadcast.hub import EVERYONE, Hub
from {{ cookiecutter.package_name }}.broadcast.outbox import Outbox
from {{ cookiecutter.package_name }}.sockets import SocketClosed

from ..helpers import RecordingSocket, wait_for


def sent_counter() -> Counter:
    return Counter("sent", "Messages sent.", registry=CollectorRegistry())


def count(counter: Counter) -> float:
    (family,) = counter.collect()
    return next(sample.value for sample in family.samples if sample.name == "sent_total")


class Client:
    """A send that completes at once unless ``held``, like a socket and its flow control."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.room = asyncio.Event()
        self.room.set()

    async def send(self, message: str) -> None:
        await self.room.wait()  # no wait at all while set, like a writable transport
        self.sent.append(message)


async def test_a_send_with_room_completes_within_the_delivery() -> None:
    hub, client = Hub(queue_size=10), Client()
    with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 10)) as outbox:
        outbox.open(client.send)
        hub.deliver("now")
        # Sent before deliver returned: no task, no turn of the event loop.
        assert client.sent == ["now"]
        assert outbox.pump is None


async def test_every_message_handed_to_the_client_is_counted_once() -> None:
    hub, client, sent = Hub(queue_size=10), Client(), sent_counter()
    with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 10)) as outbox:
        outbox.open(client.send, sent)
        hub.deliver("at once")
        client.room.clear()
        for number in range(3):  # the first send waits, two more wait behind it
            hub.deliver(str(number))
        client.room.set()
        await wait_for(lambda: len(client.sent) == 4)
    assert count(sent) == 4


async def test_a_heartbeat_goes_only_to_an_idle_subscriber_and_is_never_counted() -> None:
    hub, client, sent = Hub(queue_size=10), Client(), sent_counter()
    with hub.subscribe(Outbox("room", RecordingSocket(), 2)) as outbox:
        hub.beat("beat", "room")  # not open yet: a room still replays its history
        outbox.open(client.send, sent)
        hub.beat("beat", "room")
        assert client.sent == ["beat"]
        client.room.clear()
        hub.deliver("one", "room")  # in flight
        hub.deliver("two", "room")
        hub.beat("beat", "room")  # the line is busy: no beat, and no slot taken
        hub.deliver("three", "room")  # the line's second and last slot
        client.room.set()
        await wait_for(lambda: len(client.sent) == 4)
    assert client.sent == ["beat", "one", "two", "three"]
    assert count(sent) == 3  # the messages, not the beat


async def test_messages_wait_behind_a_blocked_send_in_order() -> None:
    hub, client = Hub(queue_size=10), Client()
    with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 10)) as outbox:
        outbox.open(client.send)
        client.room.clear()  # the client is behind
        for number in range(10):
            hub.deliver(str(number))
        await asyncio.sleep(0)
        assert client.sent == []
        client.room.set()
        await wait_for(lambda: len(client.sent) == 10)
        assert client.sent == [str(number) for number in range(10)]
        hub.deliver("after")
        await wait_for(lambda: client.sent[-1] == "after")


async def test_a_full_outbox_cuts_its_subscriber_off_and_serves_the_rest() -> None:
    hub, stalled_client, reader = Hub(queue_size=3), Client(), Client()
    stalled_client.room.clear()
    stalled_socket = RecordingSocket()
    with hub.subscribe(Outbox(EVERYONE, stalled_socket, 3)) as stalled:
        stalled.open(stalled_client.send)
        with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 3)) as outbox:
            outbox.open(reader.send)
            for number in range(10):
                hub.deliver(str(number))
                await asyncio.sleep(0)
            assert hub.subscriber_count() == 1
            await wait_for(lambda: len(reader.sent) == 10)
            assert reader.sent == [str(number) for number in range(10)]
        assert stalled_client.sent == []
        await wait_for(lambda: stalled_socket.close_codes() == [1013])
        assert stalled.pump is None and stalled.waiting is None  # its line is freed
        # The handler was not interrupted: its own next send says the socket is closed.
        with pytest.raises(SocketClosed):
            await stalled_socket.send_data("late")


async def test_messages_delivered_before_open_are_sent_first() -> None:
    hub, client = Hub(queue_size=10), Client()
    with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 10)) as outbox:
        hub.deliver("early")
        outbox.open(client.send)
        hub.deliver("late")
        await wait_for(lambda: len(client.sent) == 2)
        assert client.sent == ["early", "late"]


@pytest.mark.parametrize("turns", [0, 1], ids=["before its task ran", "while its task waits"])
async def test_a_waiting_send_is_ended_with_its_subscriber(turns: int) -> None:
    hub, client = Hub(queue_size=10), Client()
    client.room.clear()
    outcome: list[str] = []

    async def send(message: str) -> None:
        try:
            await client.send(message)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            outcome.append("left")

    with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 10)) as outbox:
        outbox.open(send)
        hub.deliver("stuck")
        pump = outbox.pump
        assert pump is not None  # waiting for the client
        for _ in range(turns):
            await asyncio.sleep(0)
    await asyncio.wait({pump}, timeout=1)
    await asyncio.sleep(0)  # the task's done callbacks
    assert pump.cancelled()
    # Ended where it waited: cancelled once its task ran, closed if it never did.
    expected = ["cancelled", "left"] if turns else ["left"]
    assert outcome == expected
    assert client.sent == []


async def test_a_send_that_fails_after_waiting_drops_what_waits() -> None:
    hub, client = Hub(queue_size=10), Client()
    client.room.clear()

    async def send(message: str) -> None:
        await client.send(message)
        raise ConnectionResetError("the client went away")

    with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 10)) as outbox:
        outbox.open(send)
        for number in range(5):
            hub.deliver(str(number))
        client.room.set()
        await wait_for(lambda: outbox.gone)
        assert client.sent == ["0"]
        assert not outbox.waiting


async def test_a_gone_client_drops_later_messages_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub, sends = Hub(queue_size=2), 0

    async def disconnected(message: str) -> None:
        nonlocal sends
        sends += 1
        raise ConnectionResetError("the client went away")

    with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 2)) as outbox:
        outbox.open(disconnected)
        for _ in range(10):  # more than the outbox holds: nobody is cut off
            hub.deliver("x")
            await asyncio.sleep(0)
        assert outbox.gone
        assert sends == 1
        assert hub.subscriber_count() == 1
    assert not caplog.records


@pytest.mark.parametrize("waits", [False, True], ids=["at once", "after waiting"])
async def test_a_send_that_fails_otherwise_is_logged_with_its_error(
    caplog: pytest.LogCaptureFixture, waits: bool
) -> None:
    hub, client = Hub(queue_size=2), Client()
    if waits:
        client.room.clear()

    async def broken(message: str) -> None:
        await client.send(message)
        raise TypeError("not a frame")

    with hub.subscribe(Outbox(EVERYONE, RecordingSocket(), 2)) as outbox:
        outbox.open(broken)
        hub.deliver("x")  # fails within the delivery, or in its task once the client reads
        client.room.set()
        await wait_for(lambda: outbox.gone)
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "sending to a subscriber failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], TypeError)


async def test_an_outbox_holds_exactly_its_limit_behind_a_waiting_send() -> None:
    hub, client, socket = Hub(queue_size=3), Client(), RecordingSocket()
    client.room.clear()
    with hub.subscribe(Outbox(EVERYONE, socket, 3)) as outbox:
        outbox.open(client.send)
        for number in range(4):  # one in flight, three wait: full, not over
            hub.deliver(str(number))
        assert hub.subscriber_count() == 1
        assert not socket.closed
        hub.deliver("one too many")
        assert hub.subscriber_count() == 0  # cut off
        assert socket.closed
        await wait_for(lambda: socket.close_codes() == [1013])
