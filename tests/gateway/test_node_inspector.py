"""The MCP Inspector CLI (``mcp-inspector --cli``, a real Node.js client) through the gateway.

Installed by ``tests/clients/install.sh``; without it this skips, unless ``MCP_EMBED_REQUIRE_NODE=1``
makes that a failure (as for tests/test_node_clients.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_helpers import MemoryRegistry, record

from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.gateway import create_gateway
from mcp_embed.handle import ServerHandle

pytestmark = pytest.mark.node

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "clients"
INSPECTOR = CLIENTS_DIR / "node_modules" / ".bin" / "mcp-inspector"
RUN_TIMEOUT = 120  # seconds; a bound on a hung client, not a performance expectation


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    problem = None
    if shutil.which("node") is None:
        problem = "node is not on PATH"
    elif not INSPECTOR.exists():
        problem = f"the MCP Inspector is not installed at {INSPECTOR}"
    if problem is not None:
        reason = f"{problem}; run tests/clients/install.sh"
        if os.environ.get("MCP_EMBED_REQUIRE_NODE") == "1":
            pytest.fail(f"MCP_EMBED_REQUIRE_NODE=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    registry = MemoryRegistry()
    handles: list[ServerHandle] = []
    try:
        for app in ("maya", "blender"):
            server = create_skill_server(app, McpHttpConfig(port=0))

            def echo(text: str, _app: str = app) -> str:
                """Echo the text back."""
                return f"{_app}:{text}"

            server.add_tool(echo, input_schema={"type": "object", "properties": {"text": {"type": "string"}}})
            handle = server.start()
            handles.append(handle)
            registry.register(record(handle, app, scene=f"{app}-scene"))
        gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=0.2).start()
        handles.append(gateway)
        yield gateway.mcp_url()
    finally:
        for handle in reversed(handles):
            handle.stop()


def inspector(url: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(HOME=str(home), NO_PROXY="127.0.0.1", NO_COLOR="1")
    command = ["node", str(INSPECTOR), "--cli", url, "--transport", "http", "--format", "json", *args]
    return subprocess.run(
        command, cwd=CLIENTS_DIR, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )


def test_inspector_lists_the_prefixed_tools(gateway_url: str, tmp_path: Path) -> None:
    proc = inspector(gateway_url, "--method", "tools/list", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tools = {t["name"]: t for t in json.loads(proc.stdout)["result"]["tools"]}
    assert sorted(tools) == ["blender-1__echo", "list_instances", "maya-1__echo"]
    assert "scene=maya-scene" in tools["maya-1__echo"]["description"]
    assert tools["blender-1__echo"]["inputSchema"]["properties"]["text"] == {"type": "string"}


@pytest.mark.parametrize("prefix", ["maya-1", "blender-1"])
def test_inspector_calls_each_instance(gateway_url: str, tmp_path: Path, prefix: str) -> None:
    args = ("--method", "tools/call", "--tool-name", f"{prefix}__echo", "--tool-arg", "text=hi")
    proc = inspector(gateway_url, *args, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["result"]
    assert result.get("isError", False) is False, result
    assert result["content"][0]["text"] == f"{prefix.split('-')[0]}:hi"
