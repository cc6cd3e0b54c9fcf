"""``dispatcher="blender"``: Blender's main thread through ``bpy.app.timers``.

One persistent timer (it survives loading another .blend file) pumps the queue: every frame's
worth of time when idle, back to back while work is waiting. ``bpy.app.timers`` may only be
touched from the main thread, so the timer is registered in ``start()`` (call it from the
add-on's ``register()``) and unregisters itself after ``stop()``.

In ``blender -b`` / ``import bpy`` (``bpy.app.background``) timers do not fire, so
:func:`blender_dispatcher` returns the inline dispatcher instead and says so in the log.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ..logs import get_logger
from ._queue import QueueDispatcher
from .inline import InlineDispatcher

log = get_logger("dispatch.blender")

IDLE_INTERVAL_S = 0.01  # how often an idle timer looks at the queue


def blender_is_background() -> bool:
    bpy = sys.modules.get("bpy")
    app = getattr(bpy, "app", None)
    return bool(getattr(app, "background", True))


class BlenderDispatcher(QueueDispatcher):
    name = "blender"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._closed = False
        self._registered = False

    def start(self) -> None:
        bpy = importlib.import_module("bpy")
        bpy.app.timers.register(self._timer, first_interval=0.0, persistent=True)
        self._registered = True
        log.info("main-thread tools run from a bpy.app.timers callback")

    def _timer(self) -> float | None:
        if self._closed:
            self._registered = False
            return None  # unregisters the timer
        self._tick()
        return 0.0 if self.queue.has_work() else IDLE_INTERVAL_S

    def _wake(self) -> None:
        """Nothing to do: the timer polls (bpy.app.timers is not safe to touch off the main thread)."""

    def close(self) -> None:
        super().close()
        self._closed = True


def blender_dispatcher(**kwargs: Any) -> QueueDispatcher:
    """The Blender timer dispatcher in the UI, the inline one in background mode."""
    if blender_is_background():
        log.info(
            "Blender is running in background mode (bpy.app.background): no UI event loop to hop "
            "to, so main-thread tools run inline, one at a time (dispatcher 'inline')"
        )
        return InlineDispatcher(**kwargs)
    return BlenderDispatcher(**kwargs)
