"""A skill function that declares a ``ToolContext`` parameter gets the call's context.

So a skill script can report progress, log to the client, check for cancellation and ask the
client (elicit, sample), as a decorated tool can. The parameter never appears in the tool's input
schema. A subprocess tool (another interpreter) gets a stand-in whose progress and log entries
the server relays as they come; asking the client needs an in-process tool.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ACCEPT, INIT
from mcp_embed import McpHttpConfig, ToolContext, create_skill_server
from mcp_embed.skills import SkillCatalog, SkillToolError
from skills.skillkit import write_skill

RENDER = '''
from mcp_embed import ToolContext


def render(frames: int, ctx: ToolContext) -> str:
    """Render some frames.

    Args:
        frames: How many.
    """
    for i in range(frames):
        ctx.report_progress(i + 1, frames, f"frame {i + 1}")
    ctx.log("info", {"rendered": frames})
    return f"{frames} frames, cancelled={ctx.cancelled}"


def plain(name: "str", context: "mcp_embed.ToolContext | None" = None) -> str:
    """A context under another name and spelling."""
    return f"{name}: {type(context).__name__}"
'''


def _catalog(root: Path, discover: Any, tools_yaml: str | None = None) -> SkillCatalog:
    write_skill(root, "render-kit", scripts={"render.py": RENDER}, tools_yaml=tools_yaml)
    return discover(root)


def test_the_context_parameter_is_not_in_the_schema(tmp_path: Path, discover: Any) -> None:
    catalog = _catalog(tmp_path / "root", discover)
    tools = {t.name: t for t in catalog.tools}
    render, plain = tools["render_kit__render"], tools["render_kit__plain"]
    assert render.input_schema["properties"].keys() == {"frames"}
    assert render.input_schema["required"] == ["frames"] and render.context_param == "ctx"
    assert plain.input_schema["properties"].keys() == {"name"} and plain.context_param == "context"
    assert not [p for p in catalog.problems if p.severity == "error"], catalog.problems


def test_called_without_a_server_the_context_is_detached(tmp_path: Path, discover: Any) -> None:
    tools = {t.name: t for t in _catalog(tmp_path / "root", discover).tools}
    assert tools["render_kit__render"].invoke({"frames": 2}) == "2 frames, cancelled=False"
    assert tools["render_kit__plain"].invoke({"name": "n"}) == "n: ToolContext"


SUBPROCESS = """
tools:
  - name: render
    source_file: scripts/render.py
    function: render
    execution: subprocess
  - name: asks
    source_file: scripts/render.py
    function: asks
    execution: subprocess
"""

ASKS = '''

def asks(ctx: "ToolContext") -> str:
    """Try to ask the client from another interpreter."""
    return str(ctx.elicit_blocking("name?", {"type": "object"}))
'''


def test_a_subprocess_tool_gets_a_context_that_relays_progress_and_logs(
    tmp_path: Path, discover: Any
) -> None:
    write_skill(tmp_path / "root", "render-kit", scripts={"render.py": RENDER + ASKS}, tools_yaml=SUBPROCESS)
    catalog = discover(tmp_path / "root")
    tools = {t.name: t for t in catalog.tools}
    render = tools["render_kit__render"]
    assert render.execution == "subprocess" and render.context_param == "ctx"
    assert render.input_schema["properties"].keys() == {"frames"}
    seen: list[tuple[str, Any]] = []

    class Recorder(ToolContext):
        __slots__ = ()

        def report_progress(
            self, progress: float, total: float | None = None, message: str | None = None
        ) -> None:
            seen.append(("progress", (progress, total, message)))

        def log(self, level: Any, data: Any, logger: str | None = None) -> None:
            seen.append(("log", (level, data)))

    assert render.invoke({"frames": 2}, None, Recorder(tool_name=render.name)) == "2 frames, cancelled=False"
    assert seen == [
        ("progress", (1, 2, "frame 1")),
        ("progress", (2, 2, "frame 2")),
        ("log", ("info", {"rendered": 2})),
    ]
    with pytest.raises(SkillToolError, match=r"asking the client .* needs an in-process tool"):
        tools["render_kit__asks"].invoke({}, None, Recorder(tool_name="asks"))


@pytest.mark.parametrize("execution", ["in-process", "subprocess"])
def test_through_the_server_progress_and_logs_reach_the_client(
    tmp_path: Path, spawn_mode: str, execution: str
) -> None:
    yaml = SUBPROCESS if execution == "subprocess" else None
    write_skill(tmp_path / "root", "render-kit", scripts={"render.py": RENDER + ASKS}, tools_yaml=yaml)
    config = McpHttpConfig(port=0, register=False, enable_file_logging=False, spawn_mode=spawn_mode)
    server = create_skill_server("t", config, skill_paths=[tmp_path / "root"])
    with server.start() as handle, httpx.Client(timeout=30) as client:
        r = client.post(handle.mcp_url(), json=INIT, headers=ACCEPT)
        headers = {
            **ACCEPT,
            "Mcp-Session-Id": r.headers["mcp-session-id"],
            "Mcp-Protocol-Version": "2025-11-25",
        }
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        client.post(handle.mcp_url(), json=note, headers=headers)
        params = {"name": "render_kit__render", "arguments": {"frames": 3}, "_meta": {"progressToken": "t"}}
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}
        body = client.post(handle.mcp_url(), json=call, headers=headers).text
    messages = [json.loads(x[5:]) for x in body.splitlines() if x.startswith("data:") and x[5:].strip()]
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert [(p["progress"], p["message"]) for p in progress] == [
        (1, "frame 1"),
        (2, "frame 2"),
        (3, "frame 3"),
    ]
    logged = [m["params"] for m in messages if m.get("method") == "notifications/message"]
    assert logged == [{"level": "info", "data": {"rendered": 3}}]
    assert messages[-1]["result"]["content"][0]["text"] == "3 frames, cancelled=False"


def test_a_relayed_subprocess_tool_is_still_killed_on_cancel_and_at_its_timeout(
    tmp_path: Path, discover: Any
) -> None:
    script = '''
import time


def stuck(ctx: "ToolContext") -> str:
    """Report once, then hang."""
    ctx.report_progress(1, None, "started")
    time.sleep(120)
    return "never"
'''
    yaml = """
tools:
  - name: stuck
    source_file: scripts/stuck.py
    function: stuck
    execution: subprocess
  - name: late
    source_file: scripts/stuck.py
    function: stuck
    execution: subprocess
    timeout: 1
"""
    write_skill(tmp_path / "root", "hang-kit", scripts={"stuck.py": script}, tools_yaml=yaml)
    tools = {t.name: t for t in discover(tmp_path / "root").tools}
    started = threading.Event()

    class Seen(ToolContext):
        __slots__ = ()

        def report_progress(
            self, progress: float, total: float | None = None, message: str | None = None
        ) -> None:
            started.set()

    with pytest.raises(SkillToolError, match="cancelled"):
        tools["hang_kit__stuck"].invoke({}, lambda: started.is_set(), Seen(tool_name="stuck"))
    assert started.is_set()  # the progress line came while the process ran, and the cancel ended it
    with pytest.raises(SkillToolError, match="timed out after 1 s"):
        tools["hang_kit__late"].invoke({}, None, Seen(tool_name="late"))
