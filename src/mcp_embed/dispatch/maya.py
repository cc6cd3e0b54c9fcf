"""``dispatcher="maya"``: Maya's main thread in the GUI, inline in mayapy and batch.

In the GUI the queue is pumped through ``maya.utils.executeDeferred``, which is safe to call
from any thread and returns at once (``executeInMainThreadWithResult`` is built on the same idle
queue but blocks the caller, which the server's event loop must never do). In ``mayapy`` and
``maya -batch`` nothing pumps that queue, so tools run inline, one at a time.

Batch detection does not trust ``cmds.about(batch=True)`` alone (it is wrong or unavailable
before ``maya.standalone.initialize()``): the executable's name and
``OpenMaya.MGlobal.mayaState()`` are checked too, and the GUI is assumed only when every
signal that can be read says interactive.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any

from ..logs import get_logger
from ._queue import QueueDispatcher
from .inline import InlineDispatcher

log = get_logger("dispatch.maya")

_BATCH_EXES = ("mayapy", "mayabatch", "mayab")


def maya_is_interactive(executable: str | None = None) -> bool:
    exe = os.path.basename(executable if executable is not None else sys.executable).lower()
    if exe.startswith(_BATCH_EXES):
        return False
    om = sys.modules.get("maya.OpenMaya") or sys.modules.get("maya.api.OpenMaya")
    mglobal = getattr(om, "MGlobal", None)
    if mglobal is not None and hasattr(mglobal, "mayaState"):
        try:
            state = mglobal.mayaState()
        except Exception:  # not initialised yet: no evidence either way
            state = mglobal.kInteractive
        if state != mglobal.kInteractive:
            return False
    cmds = sys.modules.get("maya.cmds")
    about = getattr(cmds, "about", None)
    if about is None:
        return False  # no maya.cmds yet: mayapy before standalone.initialize()
    try:
        if about(batch=True):
            return False
    except Exception:
        return False
    utils = sys.modules.get("maya.utils")
    return utils is not None and (
        hasattr(utils, "executeDeferred") or hasattr(utils, "executeInMainThreadWithResult")
    )


class MayaDispatcher(QueueDispatcher):
    name = "maya"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._closed = False
        self._utils: Any = None

    def start(self) -> None:
        self._utils = importlib.import_module("maya.utils")  # fail here, in start(), if missing

        log.info("main-thread tools run through maya.utils.executeDeferred")

    def _wake(self) -> None:
        utils = self._utils
        if self._closed or utils is None:
            return
        if hasattr(utils, "executeDeferred"):
            utils.executeDeferred(self._tick)
        else:  # older builds: the blocking variant, from a helper thread so the loop never waits
            threading.Thread(
                target=utils.executeInMainThreadWithResult, args=(self._tick,), daemon=True
            ).start()

    def close(self) -> None:
        super().close()
        self._closed = True


def maya_dispatcher(**kwargs: Any) -> QueueDispatcher:
    if maya_is_interactive():
        return MayaDispatcher(**kwargs)
    log.info("Maya is running without its GUI (mayapy or batch): main-thread tools run inline, one at a time")
    return InlineDispatcher(**kwargs)
