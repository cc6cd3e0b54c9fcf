"""The Qt dispatcher against a real QApplication (offscreen), its event loop on the main thread of
a child process, driven through the SDK's own client (tests/hosts/qt_app.py): PySide6 always in
`nox -s tests`, and PyQt6, PyQt5 and PySide2 wherever they are installed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

APP = Path(__file__).parent / "hosts" / "qt_app.py"

# PySide6 is required in `nox -s tests` (MCP_EMBED_REQUIRE_QT); the others run where installed.
# Qt is never imported into this process: each binding runs in a child process of its own.
BINDINGS = ["PySide6", "PyQt6", "PyQt5", "PySide2"]


def _installed(binding: str) -> bool:
    return importlib.util.find_spec(binding) is not None


@pytest.fixture(scope="module", params=BINDINGS)
def run(request: pytest.FixtureRequest) -> dict[str, Any]:
    binding = request.param
    if not _installed(binding):
        if binding == "PySide6" and os.environ.get("MCP_EMBED_REQUIRE_QT"):
            pytest.fail("PySide6 is required here (MCP_EMBED_REQUIRE_QT) but is not installed")
        pytest.skip(f"{binding} is not installed")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(APP), binding], capture_output=True, text=True, timeout=180, env=env, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"qt_app failed:\n{proc.stdout}\n{proc.stderr}"
    out: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    assert "error" not in out, out["error"]
    assert out["binding"] == binding
    return out


def test_auto_detects_the_running_qapplication(run: dict[str, Any]) -> None:
    assert run["dispatcher"] == "qt"


def test_a_main_tool_runs_on_the_qt_main_thread(run: dict[str, Any]) -> None:
    first = run["first"]["result"]
    assert first == {"python_main": True, "qt_gui_thread": True, "thread": "MainThread"}


def test_progress_reaches_the_client_from_the_qt_main_thread(run: dict[str, Any]) -> None:
    assert run["progress"] == {"on_main": True, "seen": [1.0, 2.0, 3.0]}


def test_a_call_made_while_the_main_thread_is_blocked_times_out_cleanly(run: dict[str, Any]) -> None:
    blocked = run["health_while_blocked"]
    assert blocked["running"] == "block" and blocked["dispatcher"] == "qt"
    assert run["listed_while_blocked"] == 4  # tools/list answered while the Qt thread was blocked
    second = run["second"]
    assert second["is_error"] is True
    assert "timed out before it started: main thread busy for" in second["text"]
    assert "queue depth 1" in second["text"]
    assert run["depth_after_timeout"] == 0  # its job was dropped, not left to run later


def test_the_ui_keeps_pumping_after_the_main_thread_is_released(run: dict[str, Any]) -> None:
    assert run["block"] == "unblocked"
    assert run["ui_ticks_after_release"] >= 5  # the heartbeat QTimer fired again
    assert run["third"]["result"]["python_main"] is True
    after = run["health_after"]
    assert after["running"] is None and after["queue_depth"] == 0 and after["wedged"] is False
