"""``RedisTokenBuckets``: the rate limit's token buckets in Redis, one bucket per key for all replicas.

The semantics of ``http.middleware.ratelimit.TokenBuckets`` (``burst`` tokens per key, refilled at
``rate`` per second, a request takes one), as one Lua script: a check is one round trip (EVALSHA;
redis-py loads the script again by itself after a Redis restart) and atomic, so the replicas
together never allow more than the bucket holds. The clock is Redis's own ``TIME``: the
replicas' clocks do not matter. A bucket's key expires once it would be full again, and a
missing key is a full bucket, so Redis keeps only the buckets in use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .connection import RedisHealth, require_redis

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisTokenBuckets"]

# KEYS[1]: the bucket (a hash: t = tokens, ts = Redis time of t, in seconds).
# ARGV: rate, burst, take (1: take a token, 0: only look). Returns the wait as a string (a Lua
# number would come back truncated to an integer).
_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local take = ARGV[3] == '1'
local saved = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = burst
if saved[1] and saved[2] then
  local elapsed = now - tonumber(saved[2])
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tonumber(saved[1]) + elapsed * rate)
end
local wait = 0
if tokens >= 1 then
  if take then tokens = tokens - 1 end
else
  wait = (1 - tokens) / rate
end
if take then
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1)
end
return string.format('%.17g', wait)
"""


class RedisTokenBuckets:
    """``await take(key)`` returns 0.0 when a token was taken, else the seconds until one is.

    Shared by every replica that uses the same Redis and ``prefix``; ``name`` keeps separate
    sets of buckets apart (the rate limit's and the failed-authentication one).
    """

    def __init__(
        self,
        client: Redis,
        rate: float,
        burst: int,
        *,
        prefix: str = "mcp-embed:",
        name: str = "ratelimit",
        health: RedisHealth | None = None,
    ) -> None:
        require_redis()
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.client = client
        self.rate = rate
        self.burst = float(burst)
        self.prefix = f"{prefix}{name}:"
        self.health = health if health is not None else RedisHealth()
        self._script = client.register_script(_SCRIPT)
        self._args = [repr(float(rate)), repr(float(burst))]

    def key(self, key: str) -> str:
        """The Redis key of ``key``'s bucket."""
        return self.prefix + key

    async def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when there was one, else the seconds until one is."""
        return await self._run(key, "1", "taking a rate-limit token")

    async def peek(self, key: str) -> float:
        """Like :meth:`take`, without taking: 0.0 when a token is there, else the seconds until one is."""
        return await self._run(key, "0", "reading a rate-limit bucket")

    async def _run(self, key: str, take: str, what: str) -> float:
        with self.health.track(what):
            wait = await self._script(keys=[self.key(key)], args=[*self._args, take])
        return float(wait.decode() if isinstance(wait, bytes) else wait)
