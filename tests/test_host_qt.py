"""The Qt dispatcher against a real PySide6 QApplication (offscreen), its event loop on the main
thread of a child process, driven through the SDK's own client (tests/hosts/qt_app.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("MCP_EMBED_REQUIRE_QT"):  # `nox -s tests` installs it and must not skip
    pytest.importorskip("PySide6.QtWidgets", reason="PySide6-Essentials is installed by `nox -s tests`")

APP = Path(__file__).parent / "hosts" / "qt_app.py"


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(APP)], capture_output=True, text=True, timeout=180, env=env, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"qt_app failed:\n{proc.stdout}\n{proc.stderr}"
    out: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    assert "error" not in out, out["error"]
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
