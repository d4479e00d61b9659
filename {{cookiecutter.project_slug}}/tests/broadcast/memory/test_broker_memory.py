"""The memory broker's room histories: bounded in count, bytes and age; ids as Redis makes them."""

from __future__ import annotations

import pytest
from quart import Quart

from {{ cookiecutter.package_name }}.broadcast import broker_memory
from {{ cookiecutter.package_name }}.broadcast.broker_memory import BoundedHistory, MemoryBroker
from {{ cookiecutter.package_name }}.broadcast.hub import Hub
from {{ cookiecutter.package_name }}.broadcast.rooms import RoomMessage


class Clock:
    """Stands in for the ``time`` module in ``broker_memory``: moves only when told."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(broker_memory, "time", clock)
    return clock


def broker(count: int = 3, seconds: int = 10, size: int = 1_000_000) -> MemoryBroker:
    app = Quart(__name__)
    app.config.update(ROOM_HISTORY=count, ROOM_HISTORY_SECONDS=seconds, ROOM_HISTORY_BYTES=size)
    return MemoryBroker(app, Hub(queue_size=10))


def message(millis: int, text: str = "x") -> RoomMessage:
    return RoomMessage.create("r", f"{millis}-0", text, None)


def test_a_history_drops_its_oldest_past_the_count_and_keeps_its_size_true() -> None:
    history = BoundedHistory()
    for millis in range(1, 6):
        history.append(message(millis))
        history.trim(max_count=3, max_bytes=10**6, oldest=0)
    assert [m.id for m in history.messages] == ["3-0", "4-0", "5-0"]
    assert history.dropped_through == (2, 0)
    assert history.size == sum(len(m.frame) for m in history.messages)


def test_a_history_keeps_what_fits_its_bytes_exactly_and_always_the_newest() -> None:
    history = BoundedHistory()
    first, second = message(1), message(2)
    history.append(first)
    history.append(second)
    history.trim(max_count=10, max_bytes=len(first.frame) + len(second.frame), oldest=0)
    assert len(history.messages) == 2  # exactly at the bound: both stay
    big = message(3, "y" * 1000)
    history.append(big)
    history.trim(max_count=10, max_bytes=10, oldest=0)
    assert list(history.messages) == [big]  # alone over the bound, the newest stays
    assert history.size == len(big.frame)


def test_a_history_drops_what_is_older_than_its_age_and_keeps_the_boundary() -> None:
    history = BoundedHistory()
    for millis in (100, 200, 300):
        history.append(message(millis))
    history.trim(max_count=10, max_bytes=10**6, oldest=200)
    assert [m.id for m in history.messages] == ["200-0", "300-0"]
    assert history.dropped_through == (100, 0)
    history.trim(max_count=10, max_bytes=10**6, oldest=301)
    assert not history.messages  # the newest too, once it has expired


async def test_ids_within_a_millisecond_count_up_and_never_go_back(clock: Clock) -> None:
    rooms = broker()
    now = int(clock.now * 1000)
    assert [await rooms.publish_to_room("r", "a") for _ in range(2)] == [f"{now}-0", f"{now}-1"]
    clock.now -= 5  # the wall clock stepped back: ids still grow
    assert await rooms.publish_to_room("r", "b") == f"{now}-2"
    clock.now += 6
    assert await rooms.publish_to_room("r", "c") == f"{int(clock.now * 1000)}-0"
    assert await rooms.publish_to_room("other", "d") == f"{int(clock.now * 1000)}-0"


async def test_a_history_is_read_without_what_has_expired_since(clock: Clock) -> None:
    rooms = broker(seconds=1)
    first = await rooms.publish_to_room("r", "old")
    clock.now += 0.5
    second = await rooms.publish_to_room("r", "new")
    clock.now += 0.5  # the first is exactly 1 s old: kept
    assert [m.id for m in (await rooms.room_history("r")).messages] == [first, second]
    clock.now += 0.01
    history = await rooms.room_history("r")
    assert [m.id for m in history.messages] == [second]
    assert history.dropped_through is not None
    assert (await rooms.room_history("never")).messages == []


async def test_an_idle_room_is_forgotten_once_its_newest_message_expires(clock: Clock) -> None:
    rooms = broker(seconds=1)
    await rooms.publish_to_room("idle", "a")
    clock.now += 0.5
    await rooms.publish_to_room("busy", "b")  # within the second since the last scan
    clock.now += 0.6
    await rooms.publish_to_room("busy", "c")  # a scan: "idle" expired, "busy" did not
    assert set(rooms.rooms) == set(rooms.last_key) == {"busy"}
    clock.now += 0.2
    await rooms.publish_to_room("fresh", "d")  # too soon for another scan
    assert set(rooms.rooms) == {"busy", "fresh"}
