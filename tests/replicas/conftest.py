"""The replica tests' fixtures: a real redis-server per test (``redis_helpers``)."""

from __future__ import annotations

from redis_helpers import guarded_redis, redis_server

__all__ = ["guarded_redis", "redis_server"]
