"""A real Qt application for the Qt dispatcher test (run as a subprocess by test_host_qt.py).

``python qt_app.py [PySide6|PyQt6|PySide2|PyQt5]`` picks the binding (PySide6 by default).

The QApplication's event loop runs on this process's main thread, as in Maya, Houdini or Nuke.
A client thread calls main-affinity tools through the SDK's own client, blocks the main thread
with one of them, and checks that a second call times out cleanly and that the UI keeps pumping
afterwards. Everything observed is printed as one JSON line; the test asserts on it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import importlib

import anyio
import httpx
from mcp.client import Client

from mcp_embed import McpHttpConfig, ToolContext, create_skill_server

BINDING = sys.argv[1] if len(sys.argv) > 1 else "PySide6"
QtCore = importlib.import_module(f"{BINDING}.QtCore")
QThread, QTimer = QtCore.QThread, QtCore.QTimer
QApplication = importlib.import_module(f"{BINDING}.QtWidgets").QApplication


def main() -> int:
    app = QApplication(sys.argv[:1])

    server = create_skill_server("qt-host-test", McpHttpConfig(port=0))  # dispatcher "auto"
    started, release = threading.Event(), threading.Event()
    ticks = [0]

    def where_am_i() -> dict[str, Any]:
        return {
            "python_main": threading.current_thread() is threading.main_thread(),
            "qt_gui_thread": bool(QThread.currentThread() == app.thread()),
            "thread": threading.current_thread().name,
        }

    @server.tool(affinity="main")
    def where() -> dict[str, Any]:
        """Where this tool ran."""
        return where_am_i()

    @server.tool(affinity="main", timeout=1.0)
    def where_soon() -> dict[str, Any]:
        """Where this tool ran; gives up after 1 s."""
        return where_am_i()

    @server.tool(affinity="main")
    def block() -> str:
        """Blocks the Qt main thread until the client releases it."""
        started.set()
        release.wait(60)
        return "unblocked"

    @server.tool(affinity="main")
    def steps(n: int, ctx: ToolContext) -> bool:
        """Reports progress from the Qt main thread."""
        for i in range(n):
            ctx.report_progress(i + 1, n)
        return threading.current_thread() is threading.main_thread()

    handle = server.start()
    out: dict[str, Any] = {"dispatcher": handle.dispatcher, "binding": BINDING}
    done = threading.Event()

    heartbeat = QTimer()
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    heartbeat.start()

    def health() -> dict[str, Any]:
        return dict(httpx.get(handle.url + "/health", timeout=10).json()["main_thread"])

    async def client_main() -> None:
        async with Client(handle.mcp_url(), mode="legacy") as c:
            out["first"] = (await c.call_tool("where", {})).structured_content
            seen: list[float] = []

            async def on_progress(p: float, total: float | None, message: str | None) -> None:
                seen.append(p)

            r = await c.call_tool("steps", {"n": 3}, progress_callback=on_progress)
            out["progress"] = {"on_main": r.structured_content["result"], "seen": seen}

            async with anyio.create_task_group() as tg:
                blocked: dict[str, Any] = {}

                async def call_block() -> None:
                    blocked["r"] = (await c.call_tool("block", {})).content[0].text

                tg.start_soon(call_block)
                await anyio.to_thread.run_sync(started.wait, 30)
                out["health_while_blocked"] = await anyio.to_thread.run_sync(health)
                out["listed_while_blocked"] = len((await c.list_tools()).tools)  # never waits
                soon = await c.call_tool("where_soon", {})  # the main thread is blocked
                out["second"] = {"is_error": soon.is_error, "text": soon.content[0].text}
                out["depth_after_timeout"] = (await anyio.to_thread.run_sync(health))["queue_depth"]
                release.set()
            out["block"] = blocked["r"]

            mark = ticks[0]
            for _ in range(2000):  # bounded: the heartbeat fires again once the thread is free
                if ticks[0] >= mark + 5:
                    break
                await anyio.sleep(0.005)
            out["ui_ticks_after_release"] = ticks[0] - mark
            out["third"] = (await c.call_tool("where", {})).structured_content
            out["health_after"] = await anyio.to_thread.run_sync(health)

    def client_thread() -> None:
        try:
            anyio.run(client_main)
        except BaseException as exc:
            out["error"] = f"{type(exc).__name__}: {exc!r}"
        finally:
            release.set()
            done.set()

    def quit_when_done() -> None:
        if done.is_set():
            app.quit()

    poll = QTimer()
    poll.setInterval(10)
    poll.timeout.connect(quit_when_done)
    poll.start()
    threading.Thread(target=client_thread, daemon=True).start()
    app.exec()  # the host's event loop, on the main thread
    handle.stop()
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
