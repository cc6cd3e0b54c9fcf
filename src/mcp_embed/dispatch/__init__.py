"""Where tool code runs. The dispatcher is the only thing that starts threads for tools."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.to_thread

from ..logs import get_logger

if TYPE_CHECKING:
    from ..context import ToolContext
    from ..tools import ToolSpec

log = get_logger("dispatch")

__all__ = ["Dispatcher", "InlineDispatcher"]


class Dispatcher(Protocol):
    """Runs a validated tool call and returns its raw value (or raises)."""

    name: str

    async def run(self, spec: ToolSpec, kwargs: dict[str, Any], ctx: ToolContext | None) -> Any: ...


class InlineDispatcher:
    """For batch and headless hosts: ``any`` tools run on worker threads; ``main`` tools run one at
    a time, serialised by a lock, because there is no UI thread to hop to."""

    name = "inline"

    def __init__(self) -> None:
        self._main_lock = threading.Lock()

    async def run(self, spec: ToolSpec, kwargs: dict[str, Any], ctx: ToolContext | None) -> Any:
        if spec.is_async:
            return await spec.invoke(**kwargs)
        call = functools.partial(spec.invoke, **kwargs)
        if spec.affinity == "main":
            call = functools.partial(self._serialised, call)
        # abandon_on_cancel: a cancelled client gets its answer at once; the thread finishes
        # in the background (Python cannot pre-empt it) and ctx.cancelled tells the tool.
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    def _serialised(self, call: functools.partial[Any]) -> Any:
        with self._main_lock:
            return call()
