"""A token-bucket rate limit per principal, or per client address for anonymous callers.

The authentication layer keeps a second set of buckets, of failed attempts per client address.

Each key gets ``burst`` tokens that refill at ``rate`` per second; a request takes one. With none
left the answer is 429 with ``Retry-After`` (whole seconds, rounded up) and a JSON-RPC error body.
``/health`` and ``/metrics`` are not limited. Memory is bounded: past ``max_keys`` buckets the
least recently used is forgotten (it comes back full, which only ever favours the client).

With several replicas the buckets are shared (``shared``: Redis, one round trip per check). While
the shared store cannot be reached the local buckets stand in, so the limit still holds per
replica and no request waits on a Redis that is gone.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol

from ..._asgi import ASGIApp, Receive, Scope, Send
from ..responses import send_jsonrpc_error

__all__ = ["RateLimit", "SharedBuckets", "TokenBuckets", "send_too_many"]


class TokenBuckets:
    """``take(key)`` returns 0.0 when a token was available, else the seconds until one is."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def peek(self, key: str) -> float:
        """Like :meth:`take`, without taking: 0.0 when a token is there, else the seconds until one is."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(self.burst, bucket[0] + (self.clock() - bucket[1]) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str) -> float:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = [self.burst, now]
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class SharedBuckets(Protocol):
    """Buckets kept outside this process (``replicas.RedisTokenBuckets``)."""

    async def take(self, key: str) -> float: ...


class RateLimit:
    """Pure-ASGI middleware in front of the MCP routes."""

    def __init__(
        self,
        app: ASGIApp,
        buckets: TokenBuckets,
        *,
        key: Callable[[Scope], str],
        on_limited: Callable[[Scope, float], None] | None = None,
        exempt_paths: Iterable[str] = ("/health", "/metrics"),
        shared: SharedBuckets | None = None,
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.shared = shared
        self.key = key
        self.on_limited = on_limited
        self.exempt = frozenset(exempt_paths)

    async def _take(self, key: str) -> float:
        if self.shared is not None:
            try:
                return await self.shared.take(key)
            except ConnectionError:  # RedisUnavailable: logged once, /health says degraded
                pass
        return self.buckets.take(key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        wait = await self._take(self.key(scope))
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        if self.on_limited is not None:
            self.on_limited(scope, wait)
        await send_too_many(send, wait)


async def send_too_many(send: Send, wait: float) -> None:
    """429 with ``Retry-After`` (whole seconds, rounded up) and a JSON-RPC error body."""
    retry = max(1, math.ceil(wait))
    await send_jsonrpc_error(
        send,
        429,
        -32000,
        f"Too many requests: retry after {retry} s",
        [(b"retry-after", str(retry).encode())],
    )
