"""Where each topic lives in Redis, and this process's subscriptions to it.

Every topic (a room, an inbox, a user's line) has its own sharded channel,
``<channel>:to:{<topic>}``, and its keys carry the same hash tag
(``{<topic>}``): on a Redis Cluster they hash to one slot, so a room's
stream, bookkeeping, presence and channel live on one shard and the publish
script runs there in one step; rooms spread over all the masters. On one
Redis the tags change nothing. The broadcast channel is ``<channel>`` itself.

A process subscribes (``SSUBSCRIBE``, Redis 7) to a topic's channel while it
has a socket there, and some ``GRACE`` seconds more for reconnects: it hears
only its own rooms, plus the broadcast channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .broker import BroadcastUnavailable
from .hub import EVERYONE

GRACE = 5.0  # seconds a channel stays subscribed after its last local socket left
CONFIRM_SECONDS = 5.0  # a subscription Redis does not confirm by then: unavailable


def tagged(prefix: str, kind: str, topic: str) -> str:
    """A key or channel of ``topic``: ``<prefix>:<kind>:{<topic>}``, one slot per topic."""
    return prefix + ":" + kind + ":{" + topic + "}"  # no f-string: Jinja reads this file


class SubscriptionLost(RedisError):
    """Redis moved a channel away (a failover or a resharding): subscribe again."""


class Nodes:
    """The Redis nodes of a deployment: one plain Redis, or the masters of a Cluster."""

    def __init__(self, url: str, cluster: RedisCluster | None, options: dict[str, Any]) -> None:
        self.url = url
        self.cluster = cluster
        self.options = options

    def node_of(self, channel: str) -> str:
        """The name of the node that carries ``channel``, from the known slot map."""
        if self.cluster is None:
            return self.url
        node = self.cluster.get_node_from_key(channel)
        if node is None:
            raise SubscriptionLost(f"no master serves {channel}")
        return str(node.name)

    def subscriber(self, node: str) -> Redis:
        """A client for one subscription connection to ``node``.

        It never reconnects by itself: redis-py would resubscribe silently,
        and what was published meanwhile would never be filled in. Its reads
        have no timeout: redis-py 8.0 applies ``socket_timeout`` to a blocking
        ``get_message``, so a channel quiet for 5 s would count as lost.
        """
        options = {**self.options, "socket_timeout": None, "retry": Retry(NoBackoff(), 0)}
        if self.cluster is None:
            return Redis.from_url(node, **options)
        host, _, port = node.rpartition(":")
        return Redis(host=host, port=int(port), **options)

    async def refresh(self) -> None:
        """Learn the slot map again (after a failover)."""
        if self.cluster is not None:
            await self.cluster.nodes_manager.initialize()


class Subscriptions:
    """The broadcast channel always, each topic's channel while a local socket uses it."""

    def __init__(
        self, prefix: str, deliver: Callable[[bytes], None], in_use: Callable[[str], int]
    ) -> None:
        """``in_use(topic)``: how many local sockets use the topic (the hub's count)."""
        self.prefix = prefix
        self.deliver = deliver
        self.in_use = in_use
        self.wanted: dict[str, str] = {prefix: EVERYONE}  # channel: its topic
        self.nodes: Nodes | None = None
        self.pubsubs: dict[str, PubSub] = {}  # node: its subscription connection
        self.readers: list[asyncio.Task[None]] = []
        self.confirming: dict[str, asyncio.Future[None]] = {}
        self.leaving: set[str] = set()  # unsubscribed by us, not yet confirmed
        self.idle: set[str] = set()  # unused at the last sweep
        self.ended: asyncio.Future[None] | None = None  # fails when a connection is lost

    def channel(self, topic: str) -> str:
        return self.prefix if topic == EVERYONE else tagged(self.prefix, "to", topic)

    async def follow(self, topic: str) -> None:
        """Return once what is published to ``topic`` reaches this process.

        While Redis is down it only notes the topic: ``open`` subscribes it.
        """
        channel = self.channel(topic)
        self.idle.discard(channel)
        try:
            if channel in self.confirming:  # another socket of the topic subscribed it
                await confirmed([self.confirming[channel]])
            elif channel not in self.wanted:
                self.wanted[channel] = topic
                if self.up():
                    await self.subscribe([channel])
        except (RedisError, OSError, TimeoutError) as error:
            self.lose(error)  # the listener subscribes everything again
            raise BroadcastUnavailable(f"Redis is unavailable: {error}") from error

    def up(self) -> bool:
        return self.ended is not None and not self.ended.done()

    def lose(self, error: BaseException) -> None:
        """End the set: ``until_lost`` raises ``error``."""
        if self.ended is not None and self.up():
            self.ended.set_exception(error)
            self.ended.exception()  # retrieved: the listener may be elsewhere

    async def open(self, nodes: Nodes) -> None:
        """Subscribe every wanted channel, each on its node; return once all are confirmed."""
        self.nodes = nodes
        self.ended = asyncio.get_running_loop().create_future()
        await self.subscribe(list(self.wanted))

    async def subscribe(self, channels: list[str]) -> None:
        assert self.nodes is not None
        loop = asyncio.get_running_loop()
        waits = [self.confirming.setdefault(c, loop.create_future()) for c in channels]
        for channel in channels:
            node = self.nodes.node_of(channel)
            pubsub = self.pubsubs.get(node)
            if pubsub is None:
                pubsub = self.pubsubs[node] = self.nodes.subscriber(node).pubsub()
                # One command per channel: a Cluster takes one slot per command.
                await pubsub.ssubscribe(channel)
                self.readers.append(asyncio.create_task(self.read(pubsub)))
            else:
                await pubsub.ssubscribe(channel)
        await confirmed(waits)

    async def read(self, pubsub: PubSub) -> None:
        """Hand each message to ``deliver``; on a lost connection, end the whole set."""
        try:
            while True:
                event = await pubsub.get_message(timeout=None)
                if event is not None:
                    self.handle(event)
        except (RedisError, OSError) as error:
            self.lose(error)
        except Exception as error:  # a bug stops a reader: the listener starts anew
            lost = SubscriptionLost(f"the reader stopped: {error!r}")
            lost.__cause__ = error
            self.lose(lost)

    def handle(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "smessage":
            self.deliver(event["data"])
            return
        channel = event["channel"].decode()
        if kind == "ssubscribe":
            waiting = self.confirming.pop(channel, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        elif kind == "sunsubscribe":
            if channel in self.leaving:
                self.leaving.discard(channel)
            elif channel in self.wanted:  # Redis moved its slot away
                raise SubscriptionLost(f"{channel} moved to another node")

    async def sweep(self) -> None:
        """Unsubscribe the channels no local socket has used for a whole ``GRACE``."""
        unused = {
            channel
            for channel, topic in self.wanted.items()
            if topic != EVERYONE and not self.in_use(topic)
        }
        for channel in unused & self.idle:
            del self.wanted[channel]
            if self.nodes is not None and self.up():
                pubsub = self.pubsubs.get(self.nodes.node_of(channel))
                if pubsub is not None:
                    self.leaving.add(channel)
                    await pubsub.sunsubscribe(channel)
        self.idle = unused - self.idle

    async def until_lost(self) -> None:
        """Wait until a subscription connection fails; raise its error."""
        assert self.ended is not None
        await self.ended

    async def close(self) -> None:
        """Drop every connection; ``wanted`` stays, for the next ``open``."""
        self.lose(SubscriptionLost("closed"))
        for reader in self.readers:
            reader.cancel()
        for pubsub in self.pubsubs.values():
            with suppress(RedisError, OSError):
                # Typed from redis-py 8.2 on; untyped in 8.0 and 8.1.
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
        self.readers, self.pubsubs = [], {}
        for waiting in self.confirming.values():
            if not waiting.done():
                waiting.set_exception(SubscriptionLost("the subscription was lost"))
                waiting.exception()  # retrieved: whoever waits gets it
        self.confirming.clear()
        self.leaving.clear()


async def confirmed(waits: list[asyncio.Future[None]]) -> None:
    """Wait for Redis to confirm subscriptions; raise if one fails or takes too long.

    ``asyncio.wait``: a timeout must not cancel a confirmation others await too.
    """
    if not waits:
        return
    done, pending = await asyncio.wait(waits, timeout=CONFIRM_SECONDS)
    if pending:
        raise TimeoutError(f"Redis did not confirm a subscription in {CONFIRM_SECONDS:.0f} s")
    for waiting in done:
        waiting.result()
