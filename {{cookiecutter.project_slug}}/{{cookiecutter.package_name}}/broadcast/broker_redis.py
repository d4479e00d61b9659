"""The redis broker: messages travel through Redis sharded pub/sub to every process.

Each process subscribes to the broadcast channel for the life of the app,
and to a topic's own channel (a room, an inbox) while it has sockets there
(``redis_shards.py``): it hears only its own rooms. It hands what arrives to
its hub. A publish is encoded once and sent once, whatever the number of
clients. The same code runs on one Redis (7.0 or newer) and on a Redis
Cluster, found by itself at ``QUART_REDIS_URL`` (or ``QUART_REDIS_CLUSTER``).
If Redis goes away, websockets stay open, ``publish`` raises
``BroadcastUnavailable`` and the subscriber retries with backoff until Redis
is back.

Broadcasts are delivered at most once. Room messages are also kept in one
Redis Stream per room (``<channel>:room:{<name>}``), trimmed by count, bytes
and age, and expiring with its last message: a client resumes from it, and
after a lost subscription this process fills each room's gap from it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from prometheus_client import Counter
from quart import Quart
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..messages import Message
from .broker import BroadcastUnavailable
from .hub import EVERYONE, Hub
from .redis_shards import GRACE, Nodes, Subscriptions, tagged
from .rooms import MessageKey, Notice, RoomHistory, RoomMessage, message_key

log = logging.getLogger(__name__)

# One leading byte tells text from bytes from a room message
# ("r<room>\n<id>\n<sender>\n<text>") from a notice ("n<topic>\n<frame>").
TEXT, BINARY, ROOM, NOTICE = b"t", b"b", b"r", b"n"
FIRST_RETRY_DELAY = 0.1  # reconnecting the subscription: see backoff()
MAX_RETRY_DELAY = 5.0
# Both connections: a connect that hangs fails after 2 s, a command's reply
# after 5 s, an idle one is checked every 5 s. (The subscription's reads wait
# as long as Redis is quiet: see Nodes.subscriber.)
CONNECTION_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "health_check_interval": 5,
}
# A command on a stale connection (after a Redis restart) is retried on a new
# one, twice, 50 ms then 100 ms later (redis-py 5 retries only the errors
# listed in retry_on_error).
COMMAND_RETRY_BACKOFF = {"cap": 0.5, "base": 0.05}
COMMAND_RETRIES = 2
RETRY_ON = [RedisConnectionError, RedisTimeoutError]
MAX_CONNECTIONS = 50  # commands in flight per process (and connections, on one Redis)
POOL_TIMEOUT = 5  # seconds a command waits for its turn

# Append to the room's stream, trim it, and announce it on the channel, in one
# atomic step: the order of the announcements is the order of the ids.
# KEYS: stream, its byte count and newest dropped id (a hash).
# ARGV: text, max count, max bytes, max age (ms), the room's channel, room,
# sender ('': none). On a Cluster the keys and the channel share one slot.
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
redis.call('SPUBLISH', ARGV[5], header .. ARGV[1])
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
    """Publishes to Redis channels; delivers what the subscribed ones carry to the hub."""

    name = "redis"

    def __init__(self, app: Quart, hub: Hub) -> None:
        self.hub = hub
        self.url: str = app.config["REDIS_URL"]
        self.channel: str = app.config["REDIS_CHANNEL"]
        cluster = app.config["REDIS_CLUSTER"]  # None: ask the server
        self.cluster = None if cluster is None else bool(cluster)
        self.history_limits = [
            app.config["ROOM_HISTORY"],
            app.config["ROOM_HISTORY_BYTES"],
            1000 * app.config["ROOM_HISTORY_SECONDS"],
        ]
        self.redis: Redis | RedisCluster | None = None  # publishing and history
        self.nodes: Nodes | None = None
        self.subscriptions = Subscriptions(self.channel, self.deliver, hub.subscriber_count)
        self.subscribed = False
        self.failing = False  # a command failed and nothing succeeded since: logged once
        self.gate = asyncio.Semaphore(MAX_CONNECTIONS)
        self.tasks: list[asyncio.Task[None]] = []
        # The newest message delivered per room with local clients: to fill a
        # gap after a lost subscription, and to deliver nothing twice.
        self.delivered: dict[str, MessageKey] = {}
        self.received = Counter(
            "redis_messages_received",
            "Messages this process received from Redis: its own rooms' and the broadcasts.",
            registry=hub.metrics.registry,
        )
        app.before_serving(self.start)
        app.after_serving(self.stop)

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self.listen()), asyncio.create_task(self.sweep())]

    async def stop(self) -> None:
        for task in self.tasks:
            # A blocking redis-py read can swallow one cancellation while it
            # unwinds (redis/redis-py#2028): cancel until the task has ended.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
        await self.subscriptions.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def connect(self) -> Nodes:
        """The publishing client, made once Redis answers: a Cluster's, or one Redis's."""
        if self.nodes is not None:
            await self.nodes.refresh()
            return self.nodes
        detected = await probe(self.url)
        cluster = self.cluster if self.cluster is not None else detected
        redis: Redis | RedisCluster
        if cluster:
            # It finds every node from this one, and follows failovers itself.
            redis = RedisCluster.from_url(self.url, **CONNECTION_OPTIONS)
            await redis.initialize()
        else:
            # A burst of publishes and handshakes waits for a free connection
            # rather than failing: redis-py's default pool raises past 100.
            pool = BlockingConnectionPool.from_url(
                self.url,
                max_connections=MAX_CONNECTIONS,
                timeout=POOL_TIMEOUT,
                retry=Retry(ExponentialBackoff(**COMMAND_RETRY_BACKOFF), COMMAND_RETRIES),
                retry_on_error=RETRY_ON,
                **CONNECTION_OPTIONS,
            )
            redis = Redis.from_pool(pool)
        self.publish_script = redis.register_script(PUBLISH_TO_ROOM)
        self.redis = redis
        cluster_client = redis if isinstance(redis, RedisCluster) else None
        self.nodes = Nodes(self.url, cluster_client, CONNECTION_OPTIONS)
        return self.nodes

    def connected(self) -> Redis | RedisCluster:
        if self.redis is None:
            raise BroadcastUnavailable("the app is not serving: Redis is not connected")
        return self.redis

    @asynccontextmanager
    async def command(self) -> AsyncIterator[Redis | RedisCluster]:
        """The client, for one of at most ``MAX_CONNECTIONS`` commands in flight.

        A burst waits its turn: on a Cluster, redis-py refuses a command past
        100 connections to a node. A failure becomes ``BroadcastUnavailable``,
        logged once per outage.
        """
        redis = self.connected()
        try:
            async with asyncio.timeout(POOL_TIMEOUT):
                await self.gate.acquire()
        except TimeoutError as error:
            busy = f"{MAX_CONNECTIONS} commands in flight for {POOL_TIMEOUT} s"
            raise BroadcastUnavailable(f"Redis is unavailable: {busy}") from error
        try:
            yield redis
        except (RedisError, OSError) as error:
            if not self.failing:
                self.failing = True
                log.warning("redis commands fail (%s); logged again after one succeeds", error)
            raise BroadcastUnavailable(f"Redis is unavailable: {error}") from error
        else:
            if self.failing:
                self.failing = False
                log.info("redis commands succeed again")
        finally:
            self.gate.release()

    def room_keys(self, room: str) -> list[str]:
        return [tagged(self.channel, "room", room), tagged(self.channel, "room-meta", room)]

    async def follow(self, topic: str) -> None:
        await self.subscriptions.follow(topic)

    async def publish(self, message: Message) -> None:
        await self.announce(self.channel, encode(message))

    async def announce(self, channel: str, payload: bytes) -> None:
        """Publish ``payload`` on ``channel``, for the ``deliver`` of every process subscribed."""
        async with self.command() as redis:
            await redis.spublish(channel, payload)

    async def publish_to_room(self, room: str, text: str, sender: str | None = None) -> str:
        channel = self.subscriptions.channel(room)
        arguments = [text, *self.history_limits, channel, room, sender or ""]
        async with self.command():
            message_id = await self.publish_script(self.room_keys(room), arguments)
        return message_id.decode() if isinstance(message_id, bytes) else str(message_id)

    async def publish_notice(self, topic: str, frame: str) -> None:
        payload = NOTICE + f"{topic}\n{frame}".encode()
        await self.announce(self.subscriptions.channel(topic), payload)

    async def room_history(self, room: str) -> RoomHistory:
        stream, meta = self.room_keys(room)
        async with self.command() as redis:
            # The dropped marker first: a trim in between can only make it look
            # older than it is, and a resume then errs towards a "missed" notice.
            # Two commands, not a transaction: each is retried on a stale connection.
            dropped = await redis.hget(meta, "dropped")
            entries = await redis.xrange(stream)
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
        self.received.inc()
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

    async def fill_gaps(self, redis: Redis | RedisCluster) -> None:
        """After a lost subscription, deliver what each local room missed meanwhile."""
        for room, (millis, sequence) in list(self.delivered.items()):
            stream, _ = self.room_keys(room)
            entries = await redis.xrange(stream, min=f"({millis}-{sequence}")
            for entry in stream_entries(entries):
                self.deliver(room_payload(room, *entry))

    def health(self) -> str:
        return "up" if self.subscribed else "down"

    async def listen(self) -> None:
        """Stay subscribed for the life of the app, reconnecting with backoff."""
        delays, outage = backoff(), False
        while True:
            try:
                await self.subscriptions.open(await self.connect())
                await self.fill_gaps(self.connected())
                self.subscribed, delays, outage = True, backoff(), False
                log.info("subscribed to redis channel %s", self.channel)
                await self.subscriptions.until_lost()
            except (RedisError, OSError, TimeoutError) as error:
                self.subscribed = False
                await self.subscriptions.close()
                delay = next(delays)
                # Once per outage; every retry only at debug level.
                level = logging.DEBUG if outage else logging.WARNING
                log.log(level, "redis subscription lost (%s); retrying in %.1f s", error, delay)
                outage = True
                await asyncio.sleep(delay)

    async def sweep(self) -> None:
        """Every ``GRACE`` seconds, leave the channels of topics nobody here uses."""
        while True:
            await asyncio.sleep(GRACE)
            # A lost connection is the listener's: it subscribes anew.
            with suppress(RedisError, OSError):
                await self.subscriptions.sweep()


async def probe(url: str) -> bool:
    """Whether the Redis at ``url`` is a node of a Redis Cluster; refuse one before 7.0."""
    client = Redis.from_url(url, retry=Retry(NoBackoff(), 0), **CONNECTION_OPTIONS)
    try:
        info = await client.info()
    finally:
        await client.aclose()
    version = str(info.get("redis_version", "0"))
    if int(version.split(".")[0]) < 7:
        raise RedisError(f"Redis {version} at {url}: sharded pub/sub needs Redis 7.0 or newer")
    return bool(info.get("cluster_enabled"))


def backoff(first: float = FIRST_RETRY_DELAY, cap: float = MAX_RETRY_DELAY) -> Iterator[float]:
    """Waits between reconnects: doubling from ``first`` up to ``cap``, each cut by up to half.

    The jitter spreads the reconnects of many processes after a Redis restart.
    """
    delay = first
    while True:
        yield delay * random.uniform(0.5, 1.0)
        delay = min(delay * 2, cap)
