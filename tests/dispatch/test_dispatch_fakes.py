"""Host adapters against FAKE ``maya``, ``hou``, ``nuke`` and ``bpy`` modules.

These fakes are a few lines each, injected into ``sys.modules``. They prove only the adapter
wiring: host detection, the GUI/batch decision, which host API is asked to run the pump, and
that the pump then runs tools on the thread that drains the fake host's queue. They prove
nothing about the real Maya, Houdini, Nuke or Blender UI. (Qt and headless Blender are tested
against the real thing in test_host_qt.py and test_host_blender.py.)
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import pytest

from dispatch_helpers import Background, Records, client, wait_until
from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.dispatch import detect_host


class FakeMainLoop:
    """The fake host's deferred-call queue; the test's thread drains it, as the host's UI would."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], Any]] = []
        self.lock = threading.Lock()
        self.posted = 0

    def post(self, fn: Callable[[], Any], *args: Any) -> None:
        with self.lock:
            self.calls.append(lambda: fn(*args))
            self.posted += 1

    def drain(self) -> None:
        with self.lock:
            calls, self.calls = self.calls, []
        for fn in calls:
            fn()


def module(name: str, **attrs: Any) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def install(monkeypatch: pytest.MonkeyPatch, **modules: types.ModuleType) -> None:
    for name, m in modules.items():
        monkeypatch.setitem(sys.modules, name.replace("__", "."), m)


def fake_maya(
    monkeypatch: pytest.MonkeyPatch,
    loop: FakeMainLoop,
    *,
    batch: bool,
    state: str = "interactive",
    deferred: bool = True,
) -> None:
    def execute_with_result(fn: Callable[[], Any]) -> Any:  # blocks its caller, as Maya's does
        done, box = threading.Event(), {}
        loop.post(lambda: (box.__setitem__("r", fn()), done.set()))
        done.wait(30)
        return box.get("r")

    utils = {"executeDeferred": loop.post} if deferred else {}
    utils["executeInMainThreadWithResult"] = execute_with_result
    mglobal = types.SimpleNamespace(
        kInteractive=0, kBatch=1, kLibraryApp=2, mayaState=lambda: {"interactive": 0, "batch": 1}[state]
    )
    install(
        monkeypatch,
        maya=module("maya"),
        maya__cmds=module("maya.cmds", about=lambda **kw: batch if kw.get("batch") else "2026"),
        maya__utils=module("maya.utils", **utils),
        maya__OpenMaya=module("maya.OpenMaya", MGlobal=mglobal),
    )


def server_with_where(config: dict[str, Any] | None = None) -> Any:
    server = create_skill_server("fake-host", McpHttpConfig(port=0, **(config or {})))

    @server.tool(affinity="main")
    def where() -> int:
        """The ident of the thread this ran on."""
        return threading.get_ident()

    return server


def call_where(handle: Any, loop: FakeMainLoop | None = None) -> int:
    async def main() -> int:
        async with client(handle.mcp_url()) as c:
            r = await c.call_tool("where", {})
            assert not r.is_error, r.content[0].text
            return int(r.structured_content["result"])

    bg = Background(main)
    wait_until(lambda: bg.done, step=loop.drain if loop is not None else None, what="call answered")
    return int(bg.get())


# -- detection -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modules", "exe", "host"),
    [
        ({}, "/usr/bin/python3", "inline"),
        ({"bpy": object()}, "/usr/bin/python3", "blender"),
        ({}, "/opt/blender/blender", "blender"),
        ({"maya.cmds": object()}, "/usr/bin/python3", "maya"),
        ({}, "/usr/autodesk/maya2026/bin/mayapy", "maya"),
        ({"hou": object()}, "/usr/bin/python3", "houdini"),
        ({}, "/opt/hfs21.0/bin/hython3.11", "houdini"),
        ({"nuke": object()}, "/usr/bin/python3", "nuke"),
        ({}, "/usr/local/Nuke16.0v1/Nuke16.0", "nuke"),
        # A DCC's own module wins over the Qt it ships.
        ({"hou": object(), "PySide6.QtCore": object()}, "/usr/bin/python3", "houdini"),
        # A Qt binding with no application running is not a Qt host.
        (
            {
                "PySide6.QtCore": types.SimpleNamespace(
                    QCoreApplication=types.SimpleNamespace(instance=lambda: None)
                )
            },
            "/usr/bin/python3",
            "inline",
        ),
        (
            {"PyQt5.QtCore": types.SimpleNamespace(QCoreApplication=types.SimpleNamespace(instance=object))},
            "/usr/bin/python3",
            "qt",
        ),
    ],
)
def test_detect_host(modules: dict[str, Any], exe: str, host: str) -> None:
    assert detect_host(modules, exe) == host


# -- Maya ------------------------------------------------------------------------------------------


def test_fake_maya_gui_pumps_through_execute_deferred(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake maya modules (GUI): proves only that executeDeferred is asked to run the pump."""
    loop = FakeMainLoop()
    fake_maya(monkeypatch, loop, batch=False)
    with server_with_where().start() as handle:
        assert handle.dispatcher == "maya"
        assert call_where(handle, loop) == threading.get_ident()
    assert loop.posted >= 1


def test_fake_maya_without_execute_deferred_uses_execute_in_main_thread_with_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fake maya.utils with only executeInMainThreadWithResult: proves only that the blocking
    variant is called off the event loop and the tool runs on the thread draining the fake queue."""
    loop = FakeMainLoop()
    fake_maya(monkeypatch, loop, batch=False, deferred=False)
    with server_with_where().start() as handle:
        assert handle.dispatcher == "maya"
        assert call_where(handle, loop) == threading.get_ident()
    assert loop.posted >= 1


@pytest.mark.parametrize(
    ("batch", "state", "exe"),
    [
        (True, "interactive", None),  # about(batch=True)
        (False, "batch", None),  # about() says GUI but MGlobal says batch: about() is not trusted alone
        (False, "interactive", "/usr/autodesk/maya2026/bin/mayapy"),  # mayapy before it knows
    ],
)
def test_fake_maya_batch_runs_inline_and_says_so(
    monkeypatch: pytest.MonkeyPatch, batch: bool, state: str, exe: str | None
) -> None:
    """Fake maya modules (batch/mayapy): proves only the batch decision and the inline fallback."""
    loop = FakeMainLoop()
    fake_maya(monkeypatch, loop, batch=batch, state=state)
    if exe is not None:
        monkeypatch.setattr(sys, "executable", exe)
    with Records() as records, server_with_where().start() as handle:
        assert handle.dispatcher == "inline"
        assert call_where(handle) != threading.get_ident()
    assert "Maya is running without its GUI" in records.text()
    assert loop.posted == 0


# -- Houdini ---------------------------------------------------------------------------------------


def test_fake_houdini_gui_pumps_through_hdefereval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake hou and hdefereval: proves only that hdefereval.executeDeferred is asked to run the pump."""
    loop = FakeMainLoop()
    install(
        monkeypatch,
        hou=module("hou", isUIAvailable=lambda: True),
        hdefereval=module("hdefereval", executeDeferred=loop.post),
    )
    with server_with_where().start() as handle:
        assert handle.dispatcher == "houdini"
        assert call_where(handle, loop) == threading.get_ident()
    assert loop.posted >= 1


def test_fake_houdini_gui_without_hdefereval_uses_an_event_loop_callback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fake hou.ui: proves only that the event loop callback is added, pumps, and is removed on stop."""
    callbacks: list[Callable[[], None]] = []
    ui = types.SimpleNamespace(
        addEventLoopCallback=callbacks.append, removeEventLoopCallback=callbacks.remove
    )
    install(monkeypatch, hou=module("hou", isUIAvailable=lambda: True, ui=ui))
    monkeypatch.setitem(sys.modules, "hdefereval", None)  # import fails
    handle = server_with_where().start()
    try:
        assert handle.dispatcher == "houdini"
        assert len(callbacks) == 1

        def houdini_event_loop_turn() -> None:
            for cb in list(callbacks):
                cb()

        async def main() -> int:
            async with client(handle.mcp_url()) as c:
                return int((await c.call_tool("where", {})).structured_content["result"])

        bg = Background(main)
        wait_until(lambda: bg.done, step=houdini_event_loop_turn, what="call answered")
        assert bg.get() == threading.get_ident()
    finally:
        handle.stop()
    assert callbacks == []


def test_fake_hython_runs_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake hou with no UI (hython): proves only the inline fallback."""
    install(monkeypatch, hou=module("hou", isUIAvailable=lambda: False))
    with Records() as records, server_with_where().start() as handle:
        assert handle.dispatcher == "inline"
        assert call_where(handle) != threading.get_ident()
    assert "Houdini has no UI (hython)" in records.text()


# -- Nuke ------------------------------------------------------------------------------------------


def test_fake_nuke_gui_pumps_through_execute_in_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake nuke (GUI): proves only that executeInMainThread is asked to run the pump."""
    loop = FakeMainLoop()
    install(monkeypatch, nuke=module("nuke", env={"gui": True}, executeInMainThread=loop.post))
    with server_with_where().start() as handle:
        assert handle.dispatcher == "nuke"
        assert call_where(handle, loop) == threading.get_ident()
    assert loop.posted >= 1


def test_fake_nuke_terminal_mode_runs_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake nuke with env['gui'] False (nuke -t): proves only the inline fallback."""
    install(monkeypatch, nuke=module("nuke", env={"gui": False}))
    with server_with_where().start() as handle:
        assert handle.dispatcher == "inline"


# -- Blender's UI path (the headless path is tested with the real bpy) -----------------------------


def test_fake_blender_ui_pumps_from_a_persistent_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake bpy with background=False: proves only that one persistent bpy.app.timers callback is
    registered, pumps the queue, and unregisters itself (returns None) after stop."""
    timers: list[tuple[Callable[[], float | None], dict[str, Any]]] = []
    app = types.SimpleNamespace(
        background=False,
        timers=types.SimpleNamespace(register=lambda fn, **kw: timers.append((fn, kw))),
    )
    install(monkeypatch, bpy=module("bpy", app=app))
    handle = server_with_where().start()
    try:
        assert handle.dispatcher == "blender"
        assert len(timers) == 1 and timers[0][1]["persistent"] is True
        timer = timers[0][0]

        async def main() -> int:
            async with client(handle.mcp_url()) as c:
                return int((await c.call_tool("where", {})).structured_content["result"])

        bg = Background(main)
        wait_until(lambda: bg.done, step=timer, what="call answered")
        assert bg.get() == threading.get_ident()
    finally:
        handle.stop()
    assert timer() is None  # stopped: the timer unregisters itself


def test_fake_nuke_wake_on_the_main_thread_runs_the_pump_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake nuke: proves only the short-circuit (asking Nuke to run something on the thread you
    are on, and waiting for it, deadlocks): no executeInMainThread call, the job runs right here."""
    import asyncio

    from mcp_embed.dispatch._queue import Job
    from mcp_embed.dispatch.nuke import NukeDispatcher

    loop_calls = FakeMainLoop()
    install(monkeypatch, nuke=module("nuke", env={"gui": True}, executeInMainThread=loop_calls.post))
    assert threading.current_thread() is threading.main_thread()

    async def main() -> int:
        dispatcher = NukeDispatcher()
        job = Job("t", threading.get_ident, asyncio.get_running_loop())
        dispatcher.queue.submit(job)
        dispatcher._wake()  # on the main thread
        return int(await job.future)

    assert asyncio.run(main()) == threading.get_ident()
    assert loop_calls.posted == 0
