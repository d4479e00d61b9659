"""Presence in Redis, shared by every process: one hash per room.

``<channel>:presence:{<room>}`` (on the room's shard) maps each user to the
processes that have them there, each with an expiry:
``"<process>=<ms>,<process>=<ms>"``. Every
process renews its own entries every third of ``QUART_PRESENCE_TTL``, one
script per room; a process that dies unannounced stops renewing, and the
first survivor that finds its entries expired removes them and announces the
leave. Each change is one Lua script: two processes can never both announce
the same one.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..broadcast.broker_redis import RedisBroker
from ..broadcast.redis_shards import tagged
from .presence import LocalUsers

# Every script starts with this: the clock of Redis, the one all processes share.
CLOCK = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ENTRY = '([^=,]+)=(%d+)'
"""
# KEYS: the room's hash. ARGV: user, process, ttl (ms). 1 if the user was absent.
ADD = """
local kept, present = {}, false
for process, expiry in string.gmatch(redis.call('HGET', KEYS[1], ARGV[1]) or '', ENTRY) do
  if tonumber(expiry) >= now then
    present = true
    if process ~= ARGV[2] then table.insert(kept, process .. '=' .. expiry) end
  end
end
table.insert(kept, ARGV[2] .. '=' .. (now + tonumber(ARGV[3])))
redis.call('HSET', KEYS[1], ARGV[1], table.concat(kept, ','))
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
if present then return 0 end
return 1
"""
# KEYS: the room's hash. ARGV: user, process. 1 if the user is now gone.
REMOVE = """
local kept = {}
for process, expiry in string.gmatch(redis.call('HGET', KEYS[1], ARGV[1]) or '', ENTRY) do
  if tonumber(expiry) >= now and process ~= ARGV[2] then
    table.insert(kept, process .. '=' .. expiry)
  end
end
if #kept > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], table.concat(kept, ','))
  return 0
end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""
# KEYS: the room's hash. ARGV: process, ttl (ms), then this process's users
# there. Renews their entries and drops expired ones, in one step per room.
# Returns the users gone (no live entry left) and this process's users that
# were absent (reaped by another process while this one stalled): they rejoin.
RENEW = """
local mine, gone, rejoined = {}, {}, {}
for i = 3, #ARGV do mine[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local user, kept, changed = all[i], {}, false
  for process, expiry in string.gmatch(all[i + 1], ENTRY) do
    if tonumber(expiry) >= now and process ~= ARGV[1] then
      table.insert(kept, process .. '=' .. expiry)
    else
      changed = true
    end
  end
  if mine[user] then
    mine[user], changed = nil, true
    table.insert(kept, ARGV[1] .. '=' .. (now + tonumber(ARGV[2])))
  end
  if #kept == 0 then
    redis.call('HDEL', KEYS[1], user)
    table.insert(gone, user)
  elseif changed then  -- other processes' live users are left as they are
    redis.call('HSET', KEYS[1], user, table.concat(kept, ','))
  end
end
for user in pairs(mine) do
  redis.call('HSET', KEYS[1], user, ARGV[1] .. '=' .. (now + tonumber(ARGV[2])))
  table.insert(rejoined, user)
end
if #ARGV > 2 then redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2])) end
return {gone, rejoined}
"""
# KEYS: the room's hash. The users with an entry that has not expired.
USERS = """
local present = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  for _, expiry in string.gmatch(all[i + 1], ENTRY) do
    if tonumber(expiry) >= now then
      table.insert(present, all[i])
      break
    end
  end
end
return present
"""


def texts(values: Any) -> list[str]:
    return [value.decode() if isinstance(value, bytes) else str(value) for value in values]


class RedisPresenceStore:
    """The room hashes of every process, through the broker's Redis connection."""

    def __init__(self, broker: RedisBroker, ttl: int) -> None:
        self.broker = broker
        self.ttl_ms = 1000 * ttl
        self.process = uuid.uuid4().hex[:12]  # this process's name in the entries
        self.scripts: dict[str, Any] = {}

    def key(self, room: str) -> str:
        return tagged(self.broker.channel, "presence", room)

    async def run(self, name: str, room: str, *arguments: str | int) -> Any:
        redis = self.broker.connected()
        if name not in self.scripts:
            source = {"add": ADD, "remove": REMOVE, "renew": RENEW, "users": USERS}[name]
            self.scripts[name] = redis.register_script(CLOCK + source)
        async with self.broker.command():
            return await self.scripts[name]([self.key(room)], list(arguments))

    async def add(self, room: str, user: str) -> bool:
        return bool(await self.run("add", room, user, self.process, self.ttl_ms))

    async def remove(self, room: str, user: str) -> bool:
        return bool(await self.run("remove", room, user, self.process))

    async def users(self, room: str) -> list[str]:
        return sorted(texts(await self.run("users", room)))

    async def refresh(self, local: LocalUsers) -> list[tuple[str, str, str]]:
        changes: list[tuple[str, str, str]] = []
        for room, counts in list(local.items()):
            gone, rejoined = await self.run("renew", room, self.process, self.ttl_ms, *counts)
            changes += [("leave", room, user) for user in texts(gone)]
            changes += [("join", room, user) for user in texts(rejoined)]
        return changes
