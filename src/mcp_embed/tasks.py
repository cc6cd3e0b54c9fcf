"""SEP-2663 tasks (``io.modelcontextprotocol/tasks``): a tool call the client polls instead of waiting on.

A tool registered with ``task="optional"`` or ``task="required"`` may answer a ``tools/call`` with a
task handle (``resultType: "task"``) when the request declares the extension in its 2026-07-28
``_meta`` client capabilities. The tool keeps running in the background; the client reads its
state with ``tasks/get``, answers its questions with ``tasks/update`` and stops it with
``tasks/cancel``. Inside a task ``ctx.elicit()``/``ctx.sample()`` park the task in
``input_required`` until the client answers, on every transport, stateless included.

The client is handed the task at the tool's first progress report or question to the client, or
once it has run ``McpHttpConfig.task_handoff`` seconds; a tool that is done before that answers like
a plain call (an ``InputRequired`` it returns is a SEP-2322 round on the request itself).
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .logs import get_logger

__all__ = ["TASKS_EXTENSION", "InMemoryTaskStore", "Task", "TaskStatus", "TaskStore", "TaskSupport"]

log = get_logger("tasks")

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"

TaskSupport = Literal["forbidden", "optional", "required"]
"""Whether a tool may answer with a SEP-2663 task: never, when the client can take one, or only so."""
TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Task:
    """The observable state of one task, as ``tasks/get`` reports it."""

    task_id: str
    tool: str
    status: TaskStatus = "working"
    created_at: float = field(default_factory=time.time)
    last_updated_at: float = 0.0
    ttl: float | None = None
    """Seconds from ``created_at`` during which the task stays readable; None: until evicted."""
    poll_interval: float | None = None
    status_message: str | None = None
    result: dict[str, Any] | None = None
    """The ``CallToolResult`` of a completed task (``isError`` results included)."""
    error: dict[str, Any] | None = None
    """The JSON-RPC error (``code``, ``message``, ``data``) of a failed task."""
    input_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Questions waiting for ``tasks/update``, by key: ``{"method": ..., "params": ...}``."""
    owner: str | None = None
    """The authenticated principal that created it; only that principal may read or change it."""

    def __post_init__(self) -> None:
        if not self.last_updated_at:
            self.last_updated_at = self.created_at

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def expired(self, now: float | None = None) -> bool:
        return self.ttl is not None and (time.time() if now is None else now) >= self.created_at + self.ttl

    def to_wire(self, *, detailed: bool = True) -> dict[str, Any]:
        """The wire ``Task``; ``detailed`` adds what its status carries (a ``DetailedTask``)."""
        out: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": _iso(self.created_at),
            "lastUpdatedAt": _iso(self.last_updated_at),
            "ttlMs": None if self.ttl is None else max(1, round(self.ttl * 1000)),
        }
        if self.poll_interval is not None:
            out["pollIntervalMs"] = max(1, round(self.poll_interval * 1000))
        if self.status_message is not None:
            out["statusMessage"] = self.status_message
        if detailed:
            if self.status == "input_required":
                out["inputRequests"] = dict(self.input_requests)
            elif self.status == "completed" and self.result is not None:
                out["result"] = self.result
            elif self.status == "failed" and self.error is not None:
                out["error"] = self.error
        return out


class TaskStore(ABC):
    """Where task state lives between polls. Subclass it to keep tasks elsewhere.

    The server saves a task on every change and loads it for ``tasks/get``; the running tool
    itself always stays in the process that started it (route ``Mcp-Name`` to that instance).
    """

    @abstractmethod
    async def save(self, task: Task) -> None:
        """Create or replace ``task``. Raise ``OverflowError`` to refuse a new one (store full)."""

    @abstractmethod
    async def load(self, task_id: str) -> Task | None:
        """The task saved under ``task_id``, or None."""

    @abstractmethod
    async def delete(self, task_id: str) -> None:
        """Forget ``task_id`` (a no-op if unknown)."""


class InMemoryTaskStore(TaskStore):
    """The default store: at most ``max_tasks`` tasks in this process's memory.

    When full, expired tasks go first, then the oldest finished ones; a store full of running
    tasks refuses new ones.
    """

    def __init__(self, max_tasks: int = 1000) -> None:
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self.max_tasks = max_tasks
        self._tasks: OrderedDict[str, Task] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tasks)

    def __bool__(self) -> bool:  # an empty store is still a store
        return True

    async def save(self, task: Task) -> None:
        if task.task_id not in self._tasks and len(self._tasks) >= self.max_tasks:
            self._make_room()
        self._tasks[task.task_id] = dataclasses.replace(task, input_requests=dict(task.input_requests))

    async def load(self, task_id: str) -> Task | None:
        task = self._tasks.get(task_id)
        return dataclasses.replace(task, input_requests=dict(task.input_requests)) if task else None

    async def delete(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)

    def _make_room(self) -> None:
        now = time.time()
        for tid in [t.task_id for t in self._tasks.values() if t.expired(now)]:
            del self._tasks[tid]
        if len(self._tasks) < self.max_tasks:
            return
        oldest = next((t.task_id for t in self._tasks.values() if t.is_terminal), None)
        if oldest is None:
            raise OverflowError(f"{len(self._tasks)} tasks are still running (max_tasks={self.max_tasks})")
        del self._tasks[oldest]
