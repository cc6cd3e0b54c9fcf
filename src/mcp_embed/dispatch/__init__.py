"""Where tool code runs. The dispatcher is the only thing that starts threads for tools.

``any`` tools run on worker threads; ``main`` tools are queued for the host's main thread by
the adapter ``McpHttpConfig.dispatcher`` names (one module per host in this package), and
protocol methods (initialize, ping, tools/list, resources/*) never wait for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..logs import get_logger
from ._queue import MainThreadQueue, QueueDispatcher
from .bindings import QT_BINDINGS
from .inline import InlineDispatcher
from .manual import ManualDispatcher

if TYPE_CHECKING:
    from ..components.tools import ToolSpec
    from ..config import McpHttpConfig
    from ..context import ToolContext

log = get_logger("dispatch")

__all__ = [
    "Dispatcher",
    "Dispatching",
    "HostName",
    "InlineDispatcher",
    "MainThreadQueue",
    "ManualDispatcher",
    "QueueDispatcher",
    "create_dispatcher",
    "detect_host",
]

HostName = Literal["qt", "blender", "maya", "houdini", "nuke", "inline"]


class Dispatcher(Protocol):
    """Runs a validated tool call and returns its raw value (or raises).

    Only ``run`` is required. A dispatcher may also have ``name``, ``start()`` (host hooks, on the
    host's main thread), ``close()``, ``status()`` (the ``main_thread`` report of ``/health``),
    ``pump(budget_ms)`` and ``handles_timeouts``; :class:`Dispatching` supplies each one it lacks.
    """

    async def run(self, spec: ToolSpec, kwargs: dict[str, Any], ctx: ToolContext | None) -> Any: ...


def _nothing() -> None:
    return None


class Dispatching:
    """A dispatcher with every optional part: its own where it has one, a no-op where it has not.

    ``SkillServer.start()`` makes one per run; everything below talks to it, so no layer probes a
    dispatcher for what it can do.
    """

    __slots__ = ("close", "dispatcher", "handles_timeouts", "name", "pump", "run", "start", "status")

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.run = dispatcher.run
        self.name = str(getattr(dispatcher, "name", "inline"))
        self.start: Callable[[], object] = getattr(dispatcher, "start", _nothing)
        self.close: Callable[[], object] = getattr(dispatcher, "close", _nothing)
        #: The main-thread report, or None: a dispatcher without a queue has nothing to report.
        self.status: Callable[[], dict[str, Any]] | None = getattr(dispatcher, "status", None)
        self.pump: Callable[[float], int] | None = getattr(dispatcher, "pump", None)
        #: The dispatcher enforces ``ToolSpec.timeout`` itself (a queue that drops late jobs).
        self.handles_timeouts = bool(getattr(dispatcher, "handles_timeouts", False))


# Executable names (lower case, without extension) that identify a host before its module loads.
_EXE_HOSTS: tuple[tuple[tuple[str, ...], HostName], ...] = (
    (("blender",), "blender"),
    (("maya", "mayapy", "mayabatch"), "maya"),
    (("houdini", "houdinifx", "houdinicore", "happrentice", "hindie", "hython"), "houdini"),
    (("nuke",), "nuke"),
)


def detect_host(modules: Mapping[str, Any] | None = None, executable: str | None = None) -> HostName:
    """The host this process runs in, from what it has imported and its executable's name.

    Nothing is imported to find out. A DCC's own module wins over Qt (Maya, Houdini and Nuke
    all ship Qt); a bare Qt binding counts only with a ``QCoreApplication`` running.
    """
    mods = sys.modules if modules is None else modules
    exe = os.path.splitext(os.path.basename(executable if executable is not None else sys.executable))[0]
    exe = exe.lower()
    if "bpy" in mods:
        return "blender"
    if "maya.cmds" in mods or "maya.utils" in mods or "maya.OpenMaya" in mods:
        return "maya"
    if "hou" in mods:
        return "houdini"
    if "nuke" in mods:
        return "nuke"
    for prefixes, host in _EXE_HOSTS:
        if exe.startswith(prefixes):
            return host
    if modules is None:
        # qt.py loads only in a process that has imported a Qt binding (its memory is not free).
        if any(name in mods for name in QT_BINDINGS):
            from .qt import qt_application

            if qt_application() is not None:
                return "qt"
    else:
        for name in QT_BINDINGS:
            core = mods.get(f"{name}.QtCore")
            app = getattr(core, "QCoreApplication", None)
            if app is not None and app.instance() is not None:
                return "qt"
    return "inline"


def create_dispatcher(config: McpHttpConfig) -> QueueDispatcher:
    """The dispatcher ``config.dispatcher`` names (``auto`` detects the host)."""
    kwargs: dict[str, Any] = {
        "depth": config.main_queue_depth,
        "wait_timeout": config.main_thread_timeout,
        "budget_ms": config.main_pump_budget_ms,
    }
    choice = config.dispatcher
    if choice == "auto":
        choice = detect_host()
        log.info("dispatcher 'auto' detected host %r", choice)
    if choice == "inline":
        return InlineDispatcher(**kwargs)
    if choice == "manual":
        return ManualDispatcher(**kwargs)
    if choice == "qt":
        from .qt import QtDispatcher

        return QtDispatcher(**kwargs)
    if choice == "blender":
        from .blender import blender_dispatcher

        return blender_dispatcher(**kwargs)
    if choice == "maya":
        from .maya import maya_dispatcher

        return maya_dispatcher(**kwargs)
    if choice == "houdini":
        from .houdini import houdini_dispatcher

        return houdini_dispatcher(**kwargs)
    if choice == "nuke":
        from .nuke import nuke_dispatcher

        return nuke_dispatcher(**kwargs)
    raise ValueError(f"unknown dispatcher {choice!r}")  # pragma: no cover - config validates
