"""``Presence`` on the memory store, in process: who joins and leaves, told once per user."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter

import pytest

from {{ cookiecutter.package_name }}.broadcast.broker import BroadcastUnavailable
from {{ cookiecutter.package_name }}.users.presence import (
    LocalUsers,
    Presence,
    change_frame,
    presence_frame,
)
from {{ cookiecutter.package_name }}.users.presence_memory import MemoryPresenceStore

from ...helpers import RecordingSocket, wait_for


class RecordingBroker:
    """The one broker call presence makes, ``publish_notice``, recorded."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, dict[str, object]]] = []

    async def publish_notice(self, topic: str, frame: str) -> None:
        self.notices.append((topic, json.loads(frame)))


class SharedStore(MemoryPresenceStore):
    """A store that, like Redis's, knows of the user on another process too."""

    def __init__(self, local: LocalUsers, elsewhere: set[str]) -> None:
        super().__init__(local)
        self.elsewhere = elsewhere
        self.changes: list[tuple[str, str, str]] = []
        self.down = False

    async def add(self, room: str, user: str) -> bool:
        return user not in self.elsewhere

    async def remove(self, room: str, user: str) -> bool:
        if self.down:
            raise BroadcastUnavailable("Redis is down")
        return user not in self.elsewhere

    async def users(self, room: str) -> list[str]:
        return sorted({*await super().users(room), *self.elsewhere})

    async def refresh(self, local: LocalUsers) -> list[tuple[str, str, str]]:
        if self.down:
            raise BroadcastUnavailable("Redis is down")
        changes, self.changes = self.changes, []
        return changes


def socket_of(user: str) -> RecordingSocket:
    sock = RecordingSocket()
    sock.user = user
    return sock


def presence(
    shared: bool = False, ttl: float = 30, elsewhere: frozenset[str] = frozenset()
) -> tuple[Presence, RecordingBroker, LocalUsers]:
    """A ``Presence`` on the memory store, or on a ``SharedStore`` (``shared``)."""
    local: LocalUsers = {}
    broker = RecordingBroker()
    store = SharedStore(local, set(elsewhere)) if shared else MemoryPresenceStore(local)
    return Presence(broker, store, local, ttl), broker, local  # type: ignore[arg-type]


def test_frames_are_json_with_names_as_they_are() -> None:
    assert json.loads(presence_frame("salle", ["zoë", "bob"])) == {
        "type": "presence", "room": "salle", "users": ["zoë", "bob"]}  # fmt: skip
    assert json.loads(change_frame("join", "salle", "zoë")) == {
        "type": "join", "room": "salle", "user": "zoë"}  # fmt: skip
    assert "zoë" in presence_frame("salle", ["zoë"])  # UTF-8, not \\u escapes


async def test_two_tabs_of_one_user_are_one_join_and_one_leave() -> None:
    tracker, broker, local = presence()
    async with tracker.joined("lobby", socket_of("alice")) as first:
        assert [json.loads(frame) for frame in first] == [
            {"type": "presence", "room": "lobby", "users": ["alice"]}]  # fmt: skip
        async with tracker.joined("lobby", socket_of("alice")) as second:
            assert json.loads(second[0])["users"] == ["alice"]
            assert local == {"lobby": Counter(alice=2)}
        assert local == {"lobby": Counter(alice=1)}
        assert broker.notices == [("lobby", {"type": "join", "room": "lobby", "user": "alice"})]
    assert local == {}  # the room is forgotten with its last socket
    assert broker.notices[1:] == [("lobby", {"type": "leave", "room": "lobby", "user": "alice"})]


async def test_the_presence_frame_lists_everyone_in_the_room_sorted() -> None:
    tracker, broker, _ = presence()
    async with (
        tracker.joined("lobby", socket_of("carol")),
        tracker.joined("other", socket_of("x")),
        tracker.joined("lobby", socket_of("bob")) as frames,
    ):
        assert json.loads(frames[0])["users"] == ["bob", "carol"]
    kinds = [(topic, notice["type"], notice["user"]) for topic, notice in broker.notices]
    assert kinds == [
        ("lobby", "join", "carol"), ("other", "join", "x"), ("lobby", "join", "bob"),
        ("lobby", "leave", "bob"), ("other", "leave", "x"), ("lobby", "leave", "carol"),
    ]  # fmt: skip


async def test_a_user_present_on_another_process_neither_joins_nor_leaves_again() -> None:
    tracker, broker, _ = presence(shared=True, elsewhere=frozenset({"alice"}))
    async with tracker.joined("lobby", socket_of("alice")) as frames:
        assert json.loads(frames[0])["users"] == ["alice"]
    assert broker.notices == []


async def test_a_leave_that_cannot_be_recorded_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker, broker, local = presence(shared=True)
    async with tracker.joined("lobby", socket_of("alice")):
        tracker.store.down = True  # type: ignore[attr-defined]
    assert local == {}
    assert [notice["type"] for _, notice in broker.notices] == ["join"]  # the leave ages out
    assert "could not record that alice left lobby: Redis is down" in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING


async def test_each_refresh_announces_the_changes_the_store_found(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker, broker, _ = presence(shared=True, ttl=0.03)  # a refresh every 10 ms
    assert tracker.interval == pytest.approx(0.01)
    store: SharedStore = tracker.store  # type: ignore[assignment]
    await tracker.start()
    try:
        store.changes = [("leave", "lobby", "bob"), ("join", "hall", "carol")]
        await wait_for(lambda: len(broker.notices) == 2, within=5)
        assert broker.notices == [
            ("lobby", {"type": "leave", "room": "lobby", "user": "bob"}),
            ("hall", {"type": "join", "room": "hall", "user": "carol"}),
        ]
        store.down = True  # a failed refresh is logged, and the next one still runs
        await wait_for(lambda: "presence not refreshed: Redis is down" in caplog.text, within=5)
        store.down, store.changes = False, [("leave", "hall", "carol")]
        await wait_for(lambda: len(broker.notices) == 3, within=5)
    finally:
        await tracker.stop()
    assert tracker.task is not None and tracker.task.cancelled()


async def test_the_memory_store_refreshes_quietly_until_stopped() -> None:
    tracker, broker, _ = presence(ttl=0.03)
    await tracker.stop()  # before start: nothing to stop
    assert tracker.task is None
    await tracker.start()
    async with tracker.joined("lobby", socket_of("alice")):
        await asyncio.sleep(0.05)  # several refreshes: one process, nothing to find
        assert tracker.task is not None and not tracker.task.done()
    await tracker.stop()
    assert tracker.task.done()
    assert [notice["type"] for _, notice in broker.notices] == ["join", "leave"]


async def test_a_room_nobody_is_in_has_no_users() -> None:
    assert await MemoryPresenceStore({}).users("empty") == []
