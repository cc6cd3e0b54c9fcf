"""dcc-mcp-core's remote-server guide, each snippet run with only the import line changed.

The snippets are the guide's text (docs/guide/remote-server.md in dcc-mcp-core), kept here
verbatim but for ``from dcc_mcp_core import`` -> ``from mcp_embed import``. What each is checked
for is what the guide says it does; where mcp-embed deliberately differs (``mcp_url()`` never
gives ``0.0.0.0``; the Host/Origin guard), docs/quickstart.md ("Coming from dcc-mcp-core") says so,
and the test checks the documented behaviour instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ACCEPT, INIT
from edge_helpers import stop_process

ROOT = Path(__file__).resolve().parents[2]
SKILLS = ROOT / "examples" / "remote-server" / "skills"

QUICK_START = """
from dcc_mcp_core import create_skill_server, McpHttpConfig

cfg = McpHttpConfig(
    port=8765,
    host="0.0.0.0",           # bind to all interfaces — required for remote access
    server_name="maya-mcp",
    enable_cors=True,          # required for web / browser clients
)

server = create_skill_server("maya", cfg)
handle = server.start()
print(handle.mcp_url())        # "http://0.0.0.0:8765/mcp"
"""

OPTIONS = """
cfg = McpHttpConfig(
    host="0.0.0.0",
    port=8765,
    enable_cors=True,
    spawn_mode="dedicated",    # always for DCC-embedded hosts
)
"""

# The Dockerfile's CMD, as the container runs it.
ONE_LINER = """
from dcc_mcp_core import create_skill_server, McpHttpConfig
import os, time
cfg = McpHttpConfig(host='0.0.0.0', port=8765, enable_cors=True)
server = create_skill_server('generic', cfg)
handle = server.start()
print(handle.mcp_url())
while True: time.sleep(60)
"""


def ported(snippet: str, port: int) -> str:
    """The import line changed; port 8765 kept unless something here already holds it."""
    code = snippet.replace("from dcc_mcp_core import", "from mcp_embed import")
    return code if port == 8765 else code.replace("8765", str(port))


@pytest.fixture
def port() -> int:
    """8765 as the guide says, or a free port when this machine already uses 8765."""
    for candidate in (8765, 0):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise AssertionError("no free port")


@contextlib.contextmanager
def running(code: str) -> Iterator[dict[str, Any]]:
    namespace: dict[str, Any] = {}
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as said, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        exec(compile(code, "<guide>", "exec"), namespace)
    namespace["stdout"], namespace["warnings"] = out.getvalue(), [str(w.message) for w in said]
    try:
        yield namespace
    finally:
        if "handle" in namespace:
            namespace["handle"].stop()


def initialize(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url, json=INIT, headers={**ACCEPT, **headers}, timeout=10)


def answer(r: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer of a POST, sent as JSON or as one SSE ``data:`` line."""
    if r.headers["content-type"].startswith("application/json"):
        return dict(r.json())
    datas = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
    return dict(json.loads(next(d for d in datas if d)))


def test_quick_start_serves_remote_and_browser_clients_as_documented(port: int) -> None:
    with running(ported(QUICK_START, port)) as ns:
        url = ns["stdout"].strip()
        # Differs on purpose: a URL this machine can connect to, never 0.0.0.0.
        assert url == f"http://127.0.0.1:{port}/mcp"
        ok = initialize(url)
        assert ok.status_code == 200 and answer(ok)["result"]["serverInfo"]["name"] == "maya-mcp"
        # "Keep it behind a firewall or use auth": the server says so, loudly.
        assert any("no authentication is configured" in w for w in ns["warnings"]), ns["warnings"]
        # "required for web / browser clients": a local browser tool's origin is answered;
        # another site's origin needs cors_origins, and both CORS and the guard say which.
        local = f"http://localhost:{port}"
        pre = httpx.options(url, headers={"Origin": local, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == local
        far = initialize(url, Origin="https://claude.ai")
        assert far.status_code == 403 and "cors_origins" in far.json()["error"]["message"]
        assert ns["cfg"].host == "0.0.0.0" and ns["handle"].bind_addr == f"0.0.0.0:{port}"


def test_the_options_table_snippet_builds_the_config_it_describes(port: int) -> None:
    with running("from mcp_embed import McpHttpConfig\n" + ported(OPTIONS, port)) as ns:
        cfg = ns["cfg"]
    assert (cfg.host, cfg.port, cfg.enable_cors, cfg.spawn_mode) == ("0.0.0.0", port, True, "dedicated")
    assert cfg.dns_rebinding_protection  # the guard stays on (docs/quickstart.md says why)


def test_the_checklist_settings_are_assignable_and_take_effect(port: int) -> None:
    from mcp_embed import McpHttpConfig, create_skill_server

    cfg = McpHttpConfig(port=port)
    cfg.host = "0.0.0.0"  # "Server is bound to 0.0.0.0"
    cfg.enable_cors = True  # "CORS is enabled (cfg.enable_cors = True)"
    cfg.spawn_mode = "dedicated"  # "McpHttpConfig.spawn_mode = 'dedicated' for DCC-embedded hosts"
    assert cfg.enable_file_logging is True  # "File logging is enabled (the default)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        handle = create_skill_server("maya", cfg).start()
    with handle:
        assert handle.bind_addr == f"0.0.0.0:{port}"
        local = f"http://localhost:{port}"
        preflight = {"Origin": local, "Access-Control-Request-Method": "POST"}
        pre = httpx.options(handle.mcp_url(), headers=preflight)
        assert pre.status_code == 204  # enable_cors took effect
    handle.shutdown()  # the guide's way to stop: idempotent after the with block


def test_the_container_one_liner_serves_the_skills_it_is_given(port: int, tmp_path: Path) -> None:
    env = {**os.environ, "DCC_MCP_SKILL_PATHS": str(SKILLS), "MCP_EMBED_LOG_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", ported(ONE_LINER, port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # start() returns once the port answers
        assert url == f"http://127.0.0.1:{port}/mcp", proc.stderr.read() if proc.poll() is not None else url
        session = initialize(url).headers["mcp-session-id"]
        version = INIT["params"]["protocolVersion"]  # type: ignore[index]
        headers = {**ACCEPT, "Mcp-Session-Id": session, "Mcp-Protocol-Version": version}
        httpx.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        listed = httpx.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers)
        payload = answer(listed)
        names = {t["name"] for t in payload["result"]["tools"]}
        expected = {p.name for p in SKILLS.iterdir() if (p / "SKILL.md").is_file()}
        assert expected, SKILLS
        for skill in expected:
            assert any(n.startswith(skill.replace("-", "_")) for n in names), (skill, names)
        assert proc.poll() is None  # the container's process keeps serving
    finally:
        stop_process(proc, timeout=20)
