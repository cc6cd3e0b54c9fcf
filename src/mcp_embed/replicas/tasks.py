"""``RedisTaskStore``: SEP-2663 task state in Redis, so any replica answers ``tasks/get`` for any task.

One key per task, ``<prefix>task:<task id>``, holding the JSON of the task's fields. Its expiry
is the task's own: ``created_at + ttl`` (plus ``grace``, so a client polling just after hears
"expired", as from the in-memory store, rather than "not found"). A task without a ttl is kept
``idle_ttl`` seconds after its last save: Redis memory stays bounded without a task count.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from .. import _json
from ..tasks import Task, TaskStore
from .connection import RedisHealth, require_redis

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisTaskStore", "task_from_json", "task_to_json"]

_FIELDS = frozenset(f.name for f in dataclasses.fields(Task))


def task_to_json(task: Task) -> bytes:
    """Every field of ``task`` as compact JSON (times as float seconds, as ``Task`` keeps them)."""
    return _json.dumps(dataclasses.asdict(task))


def task_from_json(data: bytes | str) -> Task:
    """The ``Task`` :func:`task_to_json` wrote. Fields this version does not know are ignored."""
    value = _json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a stored task is a JSON object")
    fields: dict[str, Any] = {k: v for k, v in value.items() if k in _FIELDS}
    fields["input_requests"] = dict(fields.get("input_requests") or {})
    return Task(**fields)


class RedisTaskStore(TaskStore):
    """A ``TaskStore`` in Redis, shared by the replicas: a task created on one is read on any.

    The running tool still lives in the replica that started it; only its observable state moves.
    Never full: no ``OverflowError``, keys expire instead.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "mcp-embed:",
        idle_ttl: float = 86_400.0,
        grace: float = 60.0,
        health: RedisHealth | None = None,
    ) -> None:
        require_redis()
        if not idle_ttl > 0:
            raise ValueError("idle_ttl must be a positive number of seconds")
        if grace < 0:
            raise ValueError("grace must be 0 or more seconds")
        self.client = client
        self.prefix = prefix
        self.idle_ttl_ms = max(1, round(idle_ttl * 1000))
        self.grace = grace
        self.health = health if health is not None else RedisHealth()

    def __bool__(self) -> bool:
        return True

    def key(self, task_id: str) -> str:
        """The Redis key of a task."""
        return f"{self.prefix}task:{task_id}"

    def expires_at_ms(self, task: Task) -> int | None:
        """When Redis forgets ``task`` (Unix ms), or None for "``idle_ttl`` after this save"."""
        if task.ttl is None:
            return None
        return round((task.created_at + task.ttl + self.grace) * 1000)

    async def save(self, task: Task) -> None:
        key, data, at = self.key(task.task_id), task_to_json(task), self.expires_at_ms(task)
        with self.health.track("saving a task"):
            if at is None:
                await self.client.set(key, data, px=self.idle_ttl_ms)
            elif at <= time.time() * 1000:
                await self.client.delete(key)  # already past its expiry: gone, as Redis would make it
            else:
                await self.client.set(key, data, pxat=at)

    async def load(self, task_id: str) -> Task | None:
        with self.health.track("loading a task"):
            data = await self.client.get(self.key(task_id))
        return None if data is None else task_from_json(data)

    async def delete(self, task_id: str) -> None:
        with self.health.track("deleting a task"):
            await self.client.delete(self.key(task_id))
