"""``mcp-embed install CLIENT`` on a temporary home (issue 18), through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_embed.cli import clients

URL = "http://127.0.0.1:8765/mcp"
SECRET = "s3cr3t-abcdefghijklmnop"


def _run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCC_MCP_", "MCP_"))}
    env.update(
        HOME=str(tmp_path / "home"), APPDATA=str(tmp_path / "appdata"), USERPROFILE=str(tmp_path / "home")
    )
    env["MCP_EMBED_LOG_DIR"] = str(tmp_path / "logs")
    env.update(extra)
    (tmp_path / "proj").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "mcp_embed", "install", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path / "proj",
    )  # fmt: skip


def _path(tmp_path: Path, client: str) -> Path:
    return clients.config_path(
        client, environ={"APPDATA": str(tmp_path / "appdata")}, home=tmp_path / "home", cwd=tmp_path / "proj"
    )


@pytest.mark.parametrize("client", clients.CLIENTS)
def test_a_new_file(tmp_path: Path, client: str) -> None:
    proc = _run(tmp_path, client, "--name", "maya")
    assert proc.returncode == 0, proc.stderr
    path = _path(tmp_path, client)
    assert json.loads(path.read_text()) == clients.document(client, "maya", URL)
    assert not path.with_name(path.name + ".bak").exists()


@pytest.mark.parametrize("client", clients.CLIENTS)
def test_merge_keeps_other_servers_and_makes_a_backup(tmp_path: Path, client: str) -> None:
    path = _path(tmp_path, client)
    path.parent.mkdir(parents=True)
    top = clients.servers_key(client)
    before = {"other": 1, top: {"theirs": {"command": "x", "args": ["y"]}}}
    path.write_text(json.dumps(before))
    proc = _run(tmp_path, client, "--name", "maya", "--url", "http://127.0.0.1:9000/mcp")
    assert proc.returncode == 0, proc.stderr
    after = json.loads(path.read_text())
    assert after["other"] == 1 and after[top]["theirs"] == before[top]["theirs"]
    assert after[top]["maya"] == clients.entry(client, "http://127.0.0.1:9000/mcp", name="maya")
    assert json.loads(path.with_name(path.name + ".bak").read_text()) == before


@pytest.mark.parametrize("client", ["cursor", "claude-desktop"])
def test_invalid_json_is_refused_and_untouched(tmp_path: Path, client: str) -> None:
    path = _path(tmp_path, client)
    path.parent.mkdir(parents=True)
    path.write_text('{"mcpServers": {,}}')
    proc = _run(tmp_path, client)
    assert proc.returncode == 1
    assert str(path) in proc.stderr and "not valid JSON" in proc.stderr and "line 1, column 17" in proc.stderr
    assert path.read_text() == '{"mcpServers": {,}}'
    assert not path.with_name(path.name + ".bak").exists()


def test_a_same_named_server_elsewhere_is_refused_unless_forced(tmp_path: Path) -> None:
    path = _path(tmp_path, "windsurf")
    path.parent.mkdir(parents=True)
    before = '{"mcpServers": {"maya": {"serverUrl": "https://elsewhere.example.com/mcp"}}}'
    path.write_text(before)
    proc = _run(tmp_path, "windsurf", "--name", "maya")
    assert proc.returncode == 1
    assert "already configured with the URL https://elsewhere.example.com/mcp" in proc.stderr
    assert path.read_text() == before
    assert _run(tmp_path, "windsurf", "--name", "maya", "--force").returncode == 0
    assert json.loads(path.read_text())["mcpServers"]["maya"] == {"serverUrl": URL}


def test_the_same_server_again_is_updated(tmp_path: Path) -> None:
    assert _run(tmp_path, "cursor").returncode == 0
    assert _run(tmp_path, "cursor").returncode == 0
    assert json.loads(_path(tmp_path, "cursor").read_text()) == clients.document("cursor", "mcp-embed", URL)


@pytest.mark.parametrize("client", clients.CLIENTS)
def test_dry_run_writes_nothing(tmp_path: Path, client: str) -> None:
    proc = _run(tmp_path, client, "--dry-run", "--name", "maya")
    assert proc.returncode == 0, proc.stderr
    path = _path(tmp_path, client)
    assert str(path) in proc.stdout
    assert json.dumps(clients.document(client, "maya", URL), indent=2) in proc.stdout
    assert not path.exists()


def test_an_api_key_is_referenced_never_written(tmp_path: Path) -> None:
    proc = _run(tmp_path, "vscode", "--name", "maya", MCP_EMBED_API_KEY=SECRET)
    assert proc.returncode == 0, proc.stderr
    text = _path(tmp_path, "vscode").read_text()
    assert SECRET not in text and SECRET not in proc.stdout + proc.stderr
    doc = json.loads(text)
    assert doc["servers"]["maya"]["headers"] == {"Authorization": "Bearer ${input:maya-api-key}"}
    assert [i["id"] for i in doc["inputs"]] == ["maya-api-key"]
