"""``dispatcher="nuke"``: Nuke's main thread in the GUI, inline in ``nuke -t``.

``nuke.executeInMainThread`` (returns at once) pumps the queue; when the wake-up already comes
from the main thread the pump runs directly, since asking Nuke to run something on the thread
you are on, and waiting for it, deadlocks. ``executeInMainThreadWithResult`` is used only if
the non-blocking variant is missing, from a helper thread so the event loop never blocks.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

from ..logs import get_logger
from ._queue import QueueDispatcher
from .inline import InlineDispatcher

log = get_logger("dispatch.nuke")


def nuke_is_interactive() -> bool:
    nuke = sys.modules.get("nuke")
    env = getattr(nuke, "env", None)
    try:
        return bool(env["gui"]) if env is not None else False
    except Exception:
        return False


class NukeDispatcher(QueueDispatcher):
    name = "nuke"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._closed = False

    def start(self) -> None:
        log.info("main-thread tools run through nuke.executeInMainThread")

    def _wake(self) -> None:
        nuke = importlib.import_module("nuke")
        if self._closed:
            return
        if threading.current_thread() is threading.main_thread():
            self._tick()  # already there: short-circuit
        elif hasattr(nuke, "executeInMainThread"):
            nuke.executeInMainThread(self._tick)
        else:
            threading.Thread(
                target=nuke.executeInMainThreadWithResult, args=(self._tick,), daemon=True
            ).start()

    def _continue(self) -> None:
        # On the main thread with work left: post the next tick rather than recurse into it, so
        # Nuke's own events run in between.
        nuke = importlib.import_module("nuke")
        if self._closed or not hasattr(nuke, "executeInMainThread"):
            return
        with self._wake_lock:
            self._wake_pending = True
        nuke.executeInMainThread(self._tick)

    def close(self) -> None:
        super().close()
        self._closed = True


def nuke_dispatcher(**kwargs: Any) -> QueueDispatcher:
    if nuke_is_interactive():
        return NukeDispatcher(**kwargs)
    log.info("Nuke has no GUI (nuke -t): main-thread tools run inline, one at a time")
    return InlineDispatcher(**kwargs)
