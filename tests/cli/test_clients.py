"""Each client's own config form (issue 18): exact JSON, with and without an API key, never the key."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_embed import ApiKeyConfig, OAuthConfig
from mcp_embed.cli import clients

URL = "http://127.0.0.1:8765/mcp"
SECRET = "s3cr3t-abcdefghijklmnop"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "clients.md"


def test_each_client_without_a_key() -> None:
    assert clients.document("claude-code", "maya", URL) == {
        "mcpServers": {"maya": {"type": "http", "url": URL}}
    }
    assert clients.document("cursor", "maya", URL) == {"mcpServers": {"maya": {"url": URL}}}
    assert clients.document("vscode", "maya", URL) == {"servers": {"maya": {"type": "http", "url": URL}}}
    assert clients.document("windsurf", "maya", URL) == {"mcpServers": {"maya": {"serverUrl": URL}}}
    assert clients.document("claude-desktop", "maya", URL) == {
        "mcpServers": {"maya": {"command": "npx", "args": ["-y", "mcp-remote", URL]}}
    }
    assert clients.claude_mcp_add("maya", URL) == f"claude mcp add --transport http maya {URL}"


def test_each_client_with_a_key_names_a_variable_never_the_key() -> None:
    key = clients.key_ref(ApiKeyConfig(key=SECRET, enforce="native"))
    assert key is not None
    assert clients.entry("claude-code", URL, key) == {
        "type": "http", "url": URL, "headers": {"Authorization": "Bearer ${MCP_EMBED_API_KEY}"},
    }  # fmt: skip
    assert clients.entry("cursor", URL, key) == {
        "url": URL, "headers": {"Authorization": "Bearer ${env:MCP_EMBED_API_KEY}"},
    }  # fmt: skip
    assert clients.entry("windsurf", URL, key) == {
        "serverUrl": URL, "headers": {"Authorization": "Bearer ${env:MCP_EMBED_API_KEY}"},
    }  # fmt: skip
    assert clients.document("vscode", "maya", URL, key) == {
        "inputs": [
            {"type": "promptString", "id": "maya-api-key", "description": "API key for the maya MCP server",
             "password": True},
        ],
        "servers": {"maya": {"type": "http", "url": URL,
                             "headers": {"Authorization": "Bearer ${input:maya-api-key}"}}},
    }  # fmt: skip
    assert clients.entry("claude-desktop", URL, key) == {
        "command": "npx",
        "args": ["-y", "mcp-remote", URL, "--header", "Authorization:${MCP_EMBED_AUTH_HEADER}"],
        "env": {"MCP_EMBED_AUTH_HEADER": "Bearer <your API key>"},
    }
    assert clients.claude_mcp_add("maya", URL, key) == (
        f'claude mcp add --transport http maya {URL} --header "Authorization: Bearer $MCP_EMBED_API_KEY"'
    )
    text = clients.render_all("maya", URL, key)
    assert SECRET not in text
    assert "MCP_EMBED_API_KEY" in text and "ApiKeyConfig(key=...)" in text


def test_a_key_from_a_variable_is_referenced_by_that_variable() -> None:
    key = clients.key_ref(ApiKeyConfig(key_env="MAYA_KEY", header="X-API-Key", scheme=""))
    assert key is not None
    assert clients.entry("cursor", URL, key) == {"url": URL, "headers": {"X-API-Key": "${env:MAYA_KEY}"}}
    assert "environment variable MAYA_KEY" in key.where


def test_oauth_and_no_auth_print_no_header() -> None:
    assert clients.key_ref(None) is None
    assert clients.key_ref(OAuthConfig(issuer="https://issuer.example.com")) is None


def test_a_remote_http_url_is_allowed_through_mcp_remote() -> None:
    args = clients.entry("claude-desktop", "http://192.0.2.2:8765/mcp")["args"]
    assert args == ["-y", "mcp-remote", "http://192.0.2.2:8765/mcp", "--allow-http"]


def test_serve_prints_each_clients_form(capsys: pytest.CaptureFixture[str]) -> None:
    text = clients.render_all("maya", URL)
    for client in clients.CLIENTS:
        assert json.dumps(clients.document(client, "maya", URL), indent=2) in text
    assert clients.claude_mcp_add("maya", URL) in text


def _json_blocks(markdown: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"```json\n(.*?)```", markdown, re.S)]


def test_docs_clients_md_shows_exactly_what_the_code_renders() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = _json_blocks(text)
    key = clients.KeyRef()
    for client in clients.CLIENTS:
        assert json.dumps(clients.document(client, "maya", URL), indent=2) in blocks, client
        assert json.dumps(clients.document(client, "maya", URL, key), indent=2) in blocks, client
    assert clients.claude_mcp_add("maya", URL) in text
    assert clients.claude_mcp_add("maya", URL, key) in text
    assert '"mcpServers": {\n    "maya": { "url"' not in text  # the old one-form-for-all blob


@pytest.mark.parametrize(
    ("client", "platform", "expected"),
    [
        ("claude-desktop", "darwin", "H/Library/Application Support/Claude/claude_desktop_config.json"),
        ("claude-desktop", "win32", "A/Claude/claude_desktop_config.json"),
        ("claude-desktop", "linux", "H/.config/Claude/claude_desktop_config.json"),
        ("vscode", "darwin", "H/Library/Application Support/Code/User/mcp.json"),
        ("vscode", "win32", "A/Code/User/mcp.json"),
        ("vscode", "linux", "H/.config/Code/User/mcp.json"),
        ("cursor", "win32", "H/.cursor/mcp.json"),
        ("windsurf", "linux", "H/.codeium/windsurf/mcp_config.json"),
        ("claude-code", "linux", "C/.mcp.json"),
    ],
)
def test_config_paths_per_platform(client: str, platform: str, expected: str) -> None:
    got = clients.config_path(
        client, platform=platform, environ={"APPDATA": "A"}, home=Path("H"), cwd=Path("C")
    )
    assert got == Path(expected)


def test_the_real_serve_prints_the_forms_and_never_the_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCC_MCP_", "MCP_"))}
    env.update(MCP_EMBED_LOG_DIR=str(tmp_path / "logs"), MCP_EMBED_API_KEY=SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_embed", "serve", "--port", "0", "--name", "maya"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if not line or "Press Ctrl-C" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    out = "".join(lines)
    url = next(ln.split()[-1] for ln in lines if "Streamable HTTP:" in ln)
    key = clients.KeyRef(where="")
    assert json.dumps(clients.document("windsurf", "maya", url, key), indent=2) in out
    assert json.dumps(clients.document("vscode", "maya", url, key), indent=2) in out
    assert clients.claude_mcp_add("maya", url, key) in out
    assert SECRET not in out + err
