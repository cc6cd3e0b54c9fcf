"""``dispatcher="qt"``: the thread of the running ``QApplication`` (Maya GUI, Houdini, Nuke,
3ds Max, Katana, any Qt app).

Works with whichever of PySide6, PyQt6, PySide2 or PyQt5 the host has already imported; none is
imported here otherwise. A small ``QObject`` living on the application's thread receives a
queued signal from the server thread and pumps the queue; when a pump spends its budget with
work left, a zero-length ``QTimer`` on that thread continues it after the host's own events.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from types import ModuleType
from typing import Any

from ..errors import ServerStartError
from ..logs import get_logger
from ._queue import QueueDispatcher
from .bindings import QT_BINDINGS

log = get_logger("dispatch.qt")


def imported_qt_core() -> ModuleType | None:
    """``QtCore`` of the first Qt binding the process has already imported, else None."""
    for name in QT_BINDINGS:
        if name in sys.modules:
            try:
                return importlib.import_module(f"{name}.QtCore")
            except ImportError:
                continue
    return None


def qt_application() -> Any | None:
    """The running ``QCoreApplication`` instance, without importing Qt."""
    core = imported_qt_core()
    if core is None:
        return None
    return core.QCoreApplication.instance()


def _make_pump_object(core: ModuleType, tick: Any) -> Any:
    signal = getattr(core, "Signal", None) or core.pyqtSignal
    slot = getattr(core, "Slot", None) or core.pyqtSlot

    class _McpEmbedPump(core.QObject):  # type: ignore[misc,name-defined]
        wake = signal()

        def __init__(self) -> None:
            super().__init__()
            # Qt.ConnectionType.QueuedConnection (Qt 6 style), or Qt.QueuedConnection (PyQt5/PySide2).
            queued = getattr(core.Qt, "ConnectionType", core.Qt).QueuedConnection
            self.wake.connect(self.on_wake, queued)

        @slot()  # type: ignore[untyped-decorator]
        def on_wake(self) -> None:
            tick()

    return _McpEmbedPump()


class QtDispatcher(QueueDispatcher):
    name = "qt"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._core: ModuleType | None = None
        self._obj: Any = None
        self._closed = False

    def start(self) -> None:
        core = imported_qt_core()
        app = core.QCoreApplication.instance() if core is not None else None
        if core is None or app is None:
            raise ServerStartError(
                "dispatcher='qt' needs a running QApplication (PySide6, PyQt6, PySide2 or PyQt5) "
                "created before start(); use dispatcher='inline' for a headless process"
            )
        self._core = core
        obj = _make_pump_object(core, self._tick)
        if obj.thread() is not app.thread():
            obj.moveToThread(app.thread())  # pushed from this thread to the application's
        self._obj = obj
        log.info("main-thread tools run on the %s application thread", core.__name__.split(".")[0])

    def _wake(self) -> None:
        if self._closed or self._obj is None:
            return
        self._obj.wake.emit()  # queued: the slot runs on the application's thread

    def _continue(self) -> None:
        # On the application's thread, budget spent with work left: continue from a zero-length
        # QTimer, which Qt fires after the input and paint events already posted.
        if self._closed or self._core is None:
            return
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self._core.QTimer.singleShot(0, self._tick)

    def close(self) -> None:
        super().close()
        if self._closed:
            return
        self._closed = True
        obj, self._obj = self._obj, None
        if obj is not None:
            with contextlib.suppress(RuntimeError):  # the C++ object is gone (application quit)
                obj.deleteLater()
