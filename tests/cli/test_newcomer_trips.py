"""What a new user of the CLI tripped on (issue 19), each said precisely now."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from skillkit import write_skill

from mcp_embed.cli import main

SERVE = [sys.executable, "-m", "mcp_embed", "serve"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCC_MCP_", "MCP_"))}
    env["MCP_EMBED_LOG_DIR"] = str(tmp_path / "logs")
    return env


def test_serve_refuses_a_skills_folder_that_does_not_exist(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*SERVE, "--port", "0", "--skills", str(tmp_path / "nonexistent")],
        capture_output=True, text=True, timeout=60, env=_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"--skills {tmp_path / 'nonexistent'}: no such folder" in proc.stderr


def test_a_port_in_use_is_explained_with_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [*SERVE, "--port", str(port)], capture_output=True, text=True, timeout=60, env=_env(tmp_path)
        )
    assert proc.returncode == 1
    assert "already in use" in proc.stderr and "pass --port 0 to let the OS choose" in proc.stderr
    assert "port=0" not in proc.stderr


def test_a_public_bind_without_auth_is_warned_once(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*SERVE, "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "Press Ctrl-C" not in (proc.stdout.readline() or ""):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert err.count("reachable from other machines") == 1, err


def test_skills_new_names_the_extra_that_brings_pytest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["skills", "new", "greet", "--dir", str(tmp_path)]) == 0
    assert "pip install 'mcp-embed[test]'" in capsys.readouterr().out


def test_skills_for_another_host_say_which_app_serves_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("DCC_MCP_")]:
        monkeypatch.delenv(key)
    write_skill(
        tmp_path, "rig", dcc="maya", scripts={"build.py": "def build(text: str) -> str:\n    return text\n"}
    )
    assert main(["skills", "list", str(tmp_path)]) == 0
    assert "--app maya serves the maya ones" in capsys.readouterr().out
    assert main(["call", "rig__build", "--skills", str(tmp_path), "--arg", "text=hi"]) == 2
    err = capsys.readouterr().err
    assert "tools: none" in err and "for maya, not 'generic': pass --app maya" in err
    assert main(["call", "rig__build", "--skills", str(tmp_path), "--app", "maya", "--arg", "text=hi"]) == 0
    assert capsys.readouterr().out.strip() == "hi"
