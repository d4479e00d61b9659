"""The redis broker: broadcasts travel through Redis pub/sub to every process.

Each process keeps one subscription to the channel, started and stopped with
the app, and hands what arrives to its own hub. A publish is encoded once and
sent once, whatever the number of clients. If Redis goes away, websockets stay
open, ``publish`` raises ``BroadcastUnavailable`` and the subscriber retries
with backoff until Redis is back. Delivery is at most once: a process that is
disconnected from Redis while a message is published never sees it.
"""

from __future__ import annotations

import asyncio
import logging
import random

from quart import Quart
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .hub import BroadcastUnavailable, Hub
from .messages import Message

log = logging.getLogger(__name__)

# One leading byte tells text from bytes, so both survive the trip.
TEXT, BINARY = b"t", b"b"
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0


def encode(message: Message) -> bytes:
    return TEXT + message.encode() if isinstance(message, str) else BINARY + message


def decode(payload: bytes) -> Message:
    return payload[1:].decode() if payload[:1] == TEXT else payload[1:]


class Broker:
    """Publishes to a Redis channel; delivers what the channel carries to the hub."""

    name = "redis"

    def __init__(self, app: Quart, hub: Hub) -> None:
        self.hub = hub
        self.url: str = app.config["REDIS_URL"]
        self.channel: str = app.config["REDIS_CHANNEL"]
        self.redis: Redis | None = None
        self.subscribed = False
        self.listener: asyncio.Task[None] | None = None
        app.before_serving(self.start)
        app.after_serving(self.stop)

    async def start(self) -> None:
        self.redis = Redis.from_url(
            self.url,
            socket_connect_timeout=2,
            health_check_interval=5,
            # After a Redis restart the pooled connection is stale: retry on a new
            # one. redis-py 5 retries only the errors listed in retry_on_error.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        self.listener = asyncio.create_task(self.listen(self.redis))

    async def stop(self) -> None:
        if self.listener is not None:
            # A blocking redis-py read can swallow one cancellation while it
            # unwinds (redis/redis-py#2028): cancel until the task has ended.
            while not self.listener.done():
                self.listener.cancel()
                await asyncio.wait({self.listener}, timeout=0.1)
        if self.redis is not None:
            await self.redis.aclose()

    async def publish(self, message: Message) -> None:
        if self.redis is None:
            raise BroadcastUnavailable("the app is not serving: Redis is not connected")
        try:
            await self.redis.publish(self.channel, encode(message))
        except (RedisError, OSError) as error:
            raise BroadcastUnavailable(f"Redis is unavailable: {error}") from error

    def health(self) -> str:
        return "up" if self.subscribed else "down"

    async def listen(self, redis: Redis) -> None:
        """Stay subscribed for the life of the app, reconnecting with backoff."""
        delay = FIRST_RETRY_DELAY
        while True:
            try:
                async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.subscribed, delay = True, FIRST_RETRY_DELAY
                    log.info("subscribed to redis channel %s", self.channel)
                    while True:
                        event = await pubsub.get_message(timeout=None)
                        if event is not None:  # None: a subscribe confirmation
                            self.hub.deliver(decode(event["data"]))
            except (RedisError, OSError) as error:
                log.warning("redis subscription lost (%s); retrying in %.1f s", error, delay)
            self.subscribed = False
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, MAX_RETRY_DELAY)
