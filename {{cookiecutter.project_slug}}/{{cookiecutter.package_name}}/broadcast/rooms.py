"""Rooms: names, message ids, the JSON frames clients get, and resuming.

Every room message has an id ``"<milliseconds>-<sequence>"``, the form of a
Redis Stream entry id, ordered within its room and the same on every process.
A client receives text frames of JSON::

    {"type": "message", "room": "lobby", "id": "1764140000000-0", "from": null, "data": "hello"}
    {"type": "missed", "room": "lobby", "since": "1764139000000-3"}

``missed`` comes first on a resume whose ``since`` the history no longer
reaches: some messages after it are gone, and the ones that follow are all
that is left. ``from`` is who sent it: set by the server, never by the
text{% if cookiecutter.users %} (a user id, or null for a message the server sent){% else %}; null here, where every socket is anonymous{% endif %}.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

ROOM_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MESSAGE_ID = re.compile(r"(\d{1,19})-(\d{1,19})")

MessageKey = tuple[int, int]
LONGEST_ID = "9" * 19 + "-" + "9" * 19


class BadResume(ValueError):
    """A ``since`` that cannot be resumed from: malformed, ahead, or never issued."""


class FrameTooBig(ValueError):
    """A room message whose frame would be larger than a client may be sent."""


def check_room_name(room: str) -> str | None:
    """None for a valid room name, else why it is not."""
    # "." and ".." are path segments: a client rewrites a URL that holds them.
    if ROOM_NAME.fullmatch(room) and room not in (".", ".."):
        return None
    return "a room name is 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not . or .."


def message_key(message_id: str) -> MessageKey:
    """The sortable form of an id; ``BadResume`` if it is not one."""
    match = MESSAGE_ID.fullmatch(message_id)
    if match is None:
        raise BadResume(f"since={message_id!r} is not a message id (<milliseconds>-<sequence>)")
    return int(match[1]), int(match[2])


@dataclass(frozen=True, slots=True)
class RoomMessage:
    """One room message as delivered: its id, and the frame sent to clients."""

    id: str
    key: MessageKey
    frame: str

    @classmethod
    def create(cls, room: str, message_id: str, text: str, sender: str | None) -> RoomMessage:
        # Encoded once here, whatever the number of clients.
        fields = {"type": "message", "room": room, "id": message_id, "from": sender, "data": text}
        # Not ASCII-escaped: "é" travels as its 2 bytes of UTF-8, not as 6.
        return cls(message_id, message_key(message_id), json.dumps(fields, ensure_ascii=False))


def check_frame_size(room: str, text: str, sender: str | None, limit: int) -> None:
    """``FrameTooBig`` if a frame of ``text`` could be over ``limit`` bytes.

    The frame, not the text, is what a client receives: JSON escapes each
    control character as 6 bytes, so a text under the limit can make a frame
    over it. Measured with the longest id a message can have.
    """
    size = len(RoomMessage.create(room, LONGEST_ID, text, sender).frame.encode())
    if size > limit:
        raise FrameTooBig(f"its frame would be {size} bytes, over the {limit} a client takes")


@dataclass(frozen=True, slots=True)
class Notice:
    """A frame for a topic's sockets that is not a message: no id, never kept."""

    frame: str


@dataclass(slots=True)
class RoomHistory:
    """What a room keeps: its messages oldest first, and the newest id dropped."""

    messages: list[RoomMessage] = field(default_factory=list)
    dropped_through: MessageKey | None = None


def missed_frame(room: str, since: str) -> str:
    return json.dumps({"type": "missed", "room": room, "since": since}, ensure_ascii=False)


def replay_after(history: RoomHistory, since: str) -> tuple[list[RoomMessage], bool]:
    """The messages after ``since``, and whether some after it were lost.

    Raises ``BadResume`` for an id this room never issued while its history
    still covers that point, or one newer than its newest message.
    """
    key = message_key(since)
    messages = history.messages
    after = [message for message in messages if message.key > key]
    if history.dropped_through is not None and key < history.dropped_through:
        return after, True  # messages after ``since`` were dropped
    if key == history.dropped_through or any(message.key == key for message in messages):
        return after, False
    if not messages or key < messages[0].key:
        # Nothing kept reaches back to ``since`` (expired, or the store restarted).
        return after, True
    if key > messages[-1].key:
        raise BadResume(f"since={since!r} is newer than the newest message of this room")
    raise BadResume(f"since={since!r} is not a message of this room")
