"""``dispatcher="houdini"``: Houdini's UI thread in the GUI, inline in hython.

``hdefereval.executeDeferred`` (safe from any thread, returns at once) pumps the queue when it
is available; otherwise a ``hou.ui.addEventLoopCallback`` registered in ``start()`` polls it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from ..logs import get_logger
from ._queue import QueueDispatcher
from .inline import InlineDispatcher

log = get_logger("dispatch.houdini")


def houdini_is_interactive(executable: str | None = None) -> bool:
    exe = os.path.basename(executable if executable is not None else sys.executable).lower()
    if exe.startswith("hython"):
        return False
    hou = sys.modules.get("hou")
    is_ui = getattr(hou, "isUIAvailable", None)
    try:
        return bool(is_ui()) if is_ui is not None else False
    except Exception:
        return False


class HoudiniDispatcher(QueueDispatcher):
    name = "houdini"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._closed = False
        self._defer: Callable[[Callable[[], None]], Any] | None = None
        self._callback: Callable[[], None] | None = None

    def start(self) -> None:
        try:
            self._defer = importlib.import_module("hdefereval").executeDeferred
            log.info("main-thread tools run through hdefereval.executeDeferred")
        except ImportError:
            hou = importlib.import_module("hou")

            def poll() -> None:
                if self.queue.has_work():
                    self._tick()

            hou.ui.addEventLoopCallback(poll)
            self._callback = poll
            log.info("main-thread tools run from a hou.ui event loop callback")

    def _wake(self) -> None:
        if self._defer is not None and not self._closed:
            self._defer(self._tick)

    def close(self) -> None:
        super().close()
        self._closed = True
        cb, self._callback = self._callback, None
        if cb is not None:
            try:
                hou = importlib.import_module("hou")
                hou.ui.removeEventLoopCallback(cb)
            except Exception as exc:
                log.debug("could not remove the event loop callback: %s", exc)


def houdini_dispatcher(**kwargs: Any) -> QueueDispatcher:
    if houdini_is_interactive():
        return HoudiniDispatcher(**kwargs)
    log.info("Houdini has no UI (hython): main-thread tools run inline, one at a time")
    return InlineDispatcher(**kwargs)
