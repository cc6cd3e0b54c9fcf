"""Real Node.js MCP clients against a running mcp-embed server.

The clients are pinned in tests/clients/package-lock.json; install them with
``tests/clients/install.sh``. Without them these tests skip, unless
``MCP_EMBED_REQUIRE_NODE=1`` (set by the nox session) makes that a failure.

- ``tests/clients/ts_client.mjs``: the TypeScript SDK ``Client`` over Streamable HTTP or legacy
  HTTP+SSE; it checks what it sees itself and prints one JSON summary line.
- the MCP Inspector CLI (``mcp-inspector --cli``): ``tools/list`` and ``tools/call``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_embed import McpHttpConfig, ServerHandle, create_skill_server

pytestmark = pytest.mark.node

CLIENTS_DIR = Path(__file__).parent / "clients"
NODE_MODULES = CLIENTS_DIR / "node_modules"
TS_CLIENT = CLIENTS_DIR / "ts_client.mjs"
TS_SDK = NODE_MODULES / "@modelcontextprotocol" / "sdk"
INSPECTOR = NODE_MODULES / ".bin" / "mcp-inspector"
RUN_TIMEOUT = 120  # seconds; a bound on a hung client, not a performance expectation
INSPECTOR_TOOL_ERROR_EXIT = 5  # the Inspector CLI's EXIT_CODES.TOOL_ERROR: the tool returned isError

SERVER_MODES = {
    "stateful": {"enable_sse": True},
    "stateless-json": {"stateless": True, "json_response": True},
}
# Streamable HTTP against both server modes; legacy SSE against the stateful server.
RUNS = [
    pytest.param("stateful", "streamable-http", id="stateful-streamable-http"),
    pytest.param("stateless-json", "streamable-http", id="stateless-json-streamable-http"),
    pytest.param("stateful", "sse", id="stateful-sse"),
]
INSPECTOR_TRANSPORT = {"streamable-http": "http", "sse": "sse"}


def mentions_field(text: str, field: str) -> bool:
    """True when ``text`` names ``field`` as a word of its own (``"a: ..."``, ``"'a'"``, a line ``a``).

    The same rule as ts_client.mjs: a word followed by a space and a lower-case word is prose
    ("should be a valid integer"), not a field name.
    """
    return re.search(rf"(?<![\w-]){re.escape(field)}(?![\w-])(?! [a-z])", text) is not None


@pytest.fixture(scope="module")
def node_clients() -> None:
    """Skip (or, with MCP_EMBED_REQUIRE_NODE=1, fail) when the Node clients are not installed."""
    problem = None
    if shutil.which("node") is None:
        problem = "node is not on PATH"
    elif not (TS_SDK.is_dir() and INSPECTOR.exists()):
        problem = f"the Node MCP clients are not installed in {NODE_MODULES}"
    if problem is None:
        return
    reason = f"{problem}; run tests/clients/install.sh"
    if os.environ.get("MCP_EMBED_REQUIRE_NODE") == "1":
        pytest.fail(f"MCP_EMBED_REQUIRE_NODE=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def servers(node_clients: None) -> Iterator[dict[str, ServerHandle]]:
    """One running mcp-embed server per mode in SERVER_MODES, each with the tools echo and add."""
    handles: dict[str, ServerHandle] = {}
    try:
        for mode, options in SERVER_MODES.items():
            server = create_skill_server("node-clients", McpHttpConfig(port=0, **options))

            @server.tool()
            def echo(text: str) -> str:
                """Echo the text back."""
                return text

            @server.tool()
            def add(a: int, b: int) -> int:
                """Add two integers."""
                return a + b

            handles[mode] = server.start()
        yield handles
    finally:
        for handle in handles.values():
            handle.stop()


def endpoint(handle: ServerHandle, transport: str) -> str:
    return handle.sse_url() if transport == "sse" else handle.mcp_url()


@pytest.fixture
def node_env(tmp_path: Path) -> dict[str, str]:
    """The clients' environment: a scratch HOME (the Inspector keeps state under ~) and no proxy."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(HOME=str(tmp_path), NO_PROXY="127.0.0.1", NO_COLOR="1")
    return env


def run_node(args: list[str | Path], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", *map(str, args)],
        cwd=CLIENTS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def text_of(result: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in result.get("content", []) if block.get("type") == "text")


@pytest.mark.parametrize(("mode", "transport"), RUNS)
def test_typescript_sdk_client(
    servers: dict[str, ServerHandle], node_env: dict[str, str], mode: str, transport: str
) -> None:
    url = endpoint(servers[mode], transport)
    proc = run_node([TS_CLIENT, url, transport], node_env)
    assert proc.returncode == 0, describe(proc)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, describe(proc)
    seen = json.loads(lines[0])

    assert seen["ok"] is True, seen
    assert seen["failures"] == []
    assert sorted(seen["tools"]) == ["add", "echo"]
    assert seen["echo"] == {"isError": False, "text": "hi"}
    assert seen["badAdd"]["isError"] is True
    assert mentions_field(seen["badAdd"]["text"], "a"), seen["badAdd"]
    if transport == "streamable-http":
        # A stateful server hands out a session id; a stateless one must not.
        assert (seen["sessionId"] is not None) == (mode == "stateful"), seen


def inspector(url: str, transport: str, *args: str) -> list[str | Path]:
    """An Inspector CLI command line that prints one JSON object on stdout."""
    return [INSPECTOR, "--cli", url, "--transport", INSPECTOR_TRANSPORT[transport], "--format", "json", *args]


@pytest.mark.parametrize(("mode", "transport"), RUNS)
def test_inspector_cli_tools_list(
    servers: dict[str, ServerHandle], node_env: dict[str, str], mode: str, transport: str
) -> None:
    url = endpoint(servers[mode], transport)
    proc = run_node(inspector(url, transport, "--method", "tools/list"), node_env)
    assert proc.returncode == 0, describe(proc)
    tools = {tool["name"]: tool for tool in json.loads(proc.stdout)["result"]["tools"]}
    assert sorted(tools) == ["add", "echo"]
    assert tools["echo"]["description"] == "Echo the text back."
    assert tools["add"]["inputSchema"]["properties"]["a"]["type"] == "integer"
    assert sorted(tools["add"]["inputSchema"]["required"]) == ["a", "b"]


@pytest.mark.parametrize(("mode", "transport"), RUNS)
def test_inspector_cli_tools_call_echo(
    servers: dict[str, ServerHandle], node_env: dict[str, str], mode: str, transport: str
) -> None:
    url = endpoint(servers[mode], transport)
    args = inspector(url, transport, "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=hi")
    proc = run_node(args, node_env)
    assert proc.returncode == 0, describe(proc)
    result = json.loads(proc.stdout)["result"]
    assert result.get("isError", False) is False, result
    assert text_of(result) == "hi", result


@pytest.mark.parametrize(("mode", "transport"), RUNS)
def test_inspector_cli_tools_call_bad_argument(
    servers: dict[str, ServerHandle], node_env: dict[str, str], mode: str, transport: str
) -> None:
    url = endpoint(servers[mode], transport)
    # Not {"a": "x"}: the Inspector coerces string values to the schema's type (Number("x") is
    # NaN, sent as null) even with --tool-args-json. A list reaches the server as a list.
    bad = '{"a": [1], "b": 2}'
    args = inspector(url, transport, "--method", "tools/call", "--tool-name", "add", "--tool-args-json", bad)
    proc = run_node(args, node_env)
    assert proc.returncode == INSPECTOR_TOOL_ERROR_EXIT, describe(proc)
    result = json.loads(proc.stdout)["result"]
    assert result["isError"] is True, result
    assert mentions_field(text_of(result), "a"), result
    envelope = json.loads(proc.stderr.strip().splitlines()[-1])
    assert envelope["error"]["code"] == "tool_is_error", describe(proc)
