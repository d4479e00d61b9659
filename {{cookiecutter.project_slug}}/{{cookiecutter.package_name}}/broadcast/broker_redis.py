"""The redis broker: broadcasts travel through Redis pub/sub to every process.

Each process keeps one subscription to the channel, started and stopped with
the app, and hands what arrives to its own hub: one reader loop for the
broadcast channel and every room. A publish is encoded once and sent once,
whatever the number of clients. If Redis goes away, websockets stay open,
``publish`` raises ``BroadcastUnavailable`` and the subscriber retries with
backoff until Redis is back.

Broadcasts are delivered at most once. Room messages are also kept in one
Redis Stream per room (``<channel>:room:<name>``), trimmed by count, bytes and
age, and expiring with its last message: a client resumes from it, and after
a lost subscription this process fills each room's gap from it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

from quart import Quart
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..messages import Message
from .broker import BroadcastUnavailable
from .hub import EVERYONE, Hub
from .rooms import MessageKey, Notice, RoomHistory, RoomMessage, message_key

log = logging.getLogger(__name__)

# One leading byte tells text from bytes from a room message
# ("r<room>\n<id>\n<sender>\n<text>") from a notice ("n<topic>\n<frame>").
TEXT, BINARY, ROOM, NOTICE = b"t", b"b", b"r", b"n"
FIRST_RETRY_DELAY = 0.1  # reconnecting the subscription: see backoff()
MAX_RETRY_DELAY = 5.0
# Both connections: a connect that hangs fails after 2 s, an idle one is
# checked every 5 s.
CONNECTION_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2, "health_check_interval": 5}
# A command on a stale connection (after a Redis restart) is retried on a new
# one, twice, 50 ms then 100 ms later (redis-py 5 retries only the errors
# listed in retry_on_error).
COMMAND_RETRY_BACKOFF = {"cap": 0.5, "base": 0.05}
COMMAND_RETRIES = 2
RETRY_ON = [RedisConnectionError, RedisTimeoutError]
MAX_CONNECTIONS = 50  # publishing connections per process
POOL_TIMEOUT = 5  # seconds a command waits for one of them

# Append to the room's stream, trim it, and announce it on the channel, in one
# atomic step: the order of the announcements is the order of the ids.
# KEYS: stream, its byte count and newest dropped id (a hash).
# ARGV: text, max count, max bytes, max age (ms), channel, room, sender ('': none).
PUBLISH_TO_ROOM = """
local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[1], 'f', ARGV[7])
local size = redis.call('HINCRBY', KEYS[2], 'size', #ARGV[1])
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[4])
local count = redis.call('XLEN', KEYS[1])
while count > 1 do
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local millis = tonumber(string.match(first[1], '^(%d+)'))
  if count <= tonumber(ARGV[2]) and size <= tonumber(ARGV[3]) and millis >= oldest then
    break
  end
  redis.call('XDEL', KEYS[1], first[1])
  size = redis.call('HINCRBY', KEYS[2], 'size', -#first[2][2])
  redis.call('HSET', KEYS[2], 'dropped', first[1])
  count = count - 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local header = 'r' .. ARGV[6] .. '\\n' .. id .. '\\n' .. ARGV[7] .. '\\n'
redis.call('PUBLISH', ARGV[5], header .. ARGV[1])
return id
"""


def encode(message: Message) -> bytes:
    return TEXT + message.encode() if isinstance(message, str) else BINARY + message


def decode(payload: bytes) -> Message:
    return payload[1:].decode() if payload[:1] == TEXT else payload[1:]


def stream_entries(raw: Any) -> list[tuple[str, str, str]]:
    """The (id, text, sender or "") of each entry that XRANGE returned."""
    return [
        (entry_id.decode(), fields[b"d"].decode(), fields.get(b"f", b"").decode())
        for entry_id, fields in raw or ()
    ]


def room_payload(room: str, message_id: str, text: str, sender: str = "") -> bytes:
    """What the publish script announces for a room message (see decode_room_message)."""
    return ROOM + f"{room}\n{message_id}\n{sender}\n{text}".encode()


def decode_room_message(payload: bytes) -> tuple[str, RoomMessage]:
    room, message_id, sender, text = payload[1:].decode().split("\n", 3)
    return room, RoomMessage.create(room, message_id, text, sender or None)


class RedisBroker:
    """Publishes to a Redis channel; delivers what the channel carries to the hub."""

    name = "redis"

    def __init__(self, app: Quart, hub: Hub) -> None:
        self.hub = hub
        self.url: str = app.config["REDIS_URL"]
        self.channel: str = app.config["REDIS_CHANNEL"]
        self.history_limits = [
            app.config["ROOM_HISTORY"],
            app.config["ROOM_HISTORY_BYTES"],
            1000 * app.config["ROOM_HISTORY_SECONDS"],
        ]
        self.redis: Redis | None = None  # publishing and history
        self.subscriber: Redis | None = None  # the subscription
        self.subscribed = False
        self.listener: asyncio.Task[None] | None = None
        # The newest message delivered per room with local clients: to fill a
        # gap after a lost subscription, and to deliver nothing twice.
        self.delivered: dict[str, MessageKey] = {}
        app.before_serving(self.start)
        app.after_serving(self.stop)

    async def start(self) -> None:
        retry = Retry(ExponentialBackoff(**COMMAND_RETRY_BACKOFF), COMMAND_RETRIES)
        # A burst of publishes and handshakes waits for a free connection
        # rather than failing: redis-py's default pool raises past 100.
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT,
            retry=retry,
            retry_on_error=RETRY_ON,
            **CONNECTION_OPTIONS,
        )
        self.redis = Redis.from_pool(pool)
        # The subscription never reconnects by itself: redis-py would resubscribe
        # silently, and what was published meanwhile would never be filled in.
        self.subscriber = Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), **CONNECTION_OPTIONS
        )
        self.publish_script = self.redis.register_script(PUBLISH_TO_ROOM)
        self.listener = asyncio.create_task(self.listen(self.subscriber))

    async def stop(self) -> None:
        if self.listener is not None:
            # A blocking redis-py read can swallow one cancellation while it
            # unwinds (redis/redis-py#2028): cancel until the task has ended.
            while not self.listener.done():
                self.listener.cancel()
                await asyncio.wait({self.listener}, timeout=0.1)
        for client in (self.subscriber, self.redis):
            if client is not None:
                await client.aclose()

    def connected(self) -> Redis:
        if self.redis is None:
            raise BroadcastUnavailable("the app is not serving: Redis is not connected")
        return self.redis

    def room_keys(self, room: str) -> list[str]:
        return [f"{self.channel}:room:{room}", f"{self.channel}:room-meta:{room}"]

    async def publish(self, message: Message) -> None:
        await self.announce(encode(message))

    async def announce(self, payload: bytes) -> None:
        """Publish ``payload`` on the channel, for every process's ``deliver``."""
        try:
            await self.connected().publish(self.channel, payload)
        except (RedisError, OSError) as error:
            raise BroadcastUnavailable(f"Redis is unavailable: {error}") from error

    async def publish_to_room(self, room: str, text: str, sender: str | None = None) -> str:
        arguments = [text, *self.history_limits, self.channel, room, sender or ""]
        try:
            message_id = await self.publish_script(self.room_keys(room), arguments)
        except (RedisError, OSError) as error:
            raise BroadcastUnavailable(f"Redis is unavailable: {error}") from error
        return message_id.decode() if isinstance(message_id, bytes) else str(message_id)

    async def publish_notice(self, topic: str, frame: str) -> None:
        await self.announce(NOTICE + f"{topic}\n{frame}".encode())

    async def room_history(self, room: str) -> RoomHistory:
        stream, meta = self.room_keys(room)
        redis = self.connected()
        try:
            # The dropped marker first: a trim in between can only make it look
            # older than it is, and a resume then errs towards a "missed" notice.
            # Two commands, not a transaction: each is retried on a stale connection.
            dropped = await redis.hget(meta, "dropped")
            entries = await redis.xrange(stream)
        except (RedisError, OSError) as error:
            raise BroadcastUnavailable(f"Redis is unavailable: {error}") from error
        oldest = (int(time.time() * 1000) - self.history_limits[2], 0)
        dropped_id = dropped.decode() if isinstance(dropped, bytes) else dropped
        history = RoomHistory(dropped_through=message_key(dropped_id) if dropped_id else None)
        for entry_id, text, sender in stream_entries(entries):
            message = RoomMessage.create(room, entry_id, text, sender or None)
            if message.key < oldest:  # expired, not yet trimmed
                history.dropped_through = message.key
            else:
                history.messages.append(message)
        return history

    def deliver(self, payload: bytes) -> None:
        if payload[:1] == NOTICE:
            topic, frame = payload[1:].decode().split("\n", 1)
            self.hub.deliver(Notice(frame), topic)
            return
        if payload[:1] != ROOM:
            self.hub.deliver(decode(payload), EVERYONE)
            return
        room, message = decode_room_message(payload)
        if not self.hub.subscriber_count(room):
            self.delivered.pop(room, None)
        elif message.key > self.delivered.get(room, (0, 0)):
            self.delivered[room] = message.key
            self.hub.deliver(message, room)

    async def fill_gaps(self, redis: Redis) -> None:
        """After a lost subscription, deliver what each local room missed meanwhile."""
        for room, (millis, sequence) in list(self.delivered.items()):
            stream, _ = self.room_keys(room)
            entries = await redis.xrange(stream, min=f"({millis}-{sequence}")
            for entry in stream_entries(entries):
                self.deliver(room_payload(room, *entry))

    def health(self) -> str:
        return "up" if self.subscribed else "down"

    async def listen(self, subscriber: Redis) -> None:
        """Stay subscribed for the life of the app, reconnecting with backoff."""
        delays = backoff()
        while True:
            try:
                async with subscriber.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    await self.fill_gaps(self.connected())
                    self.subscribed, delays = True, backoff()
                    log.info("subscribed to redis channel %s", self.channel)
                    while True:
                        event = await pubsub.get_message(timeout=None)
                        if event is not None:  # None: a subscribe confirmation
                            self.deliver(event["data"])
            except (RedisError, OSError) as error:
                self.subscribed = False
                delay = next(delays)
                log.warning("redis subscription lost (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)


def backoff(first: float = FIRST_RETRY_DELAY, cap: float = MAX_RETRY_DELAY) -> Iterator[float]:
    """Waits between reconnects: doubling from ``first`` up to ``cap``, each cut by up to half.

    The jitter spreads the reconnects of many processes after a Redis restart.
    """
    delay = first
    while True:
        yield delay * random.uniform(0.5, 1.0)
        delay = min(delay * 2, cap)
