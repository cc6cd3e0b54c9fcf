"""A skill function that declares a ``ToolContext`` parameter gets the call's context.

So a skill script can report progress, log to the client, check for cancellation and ask the
client (elicit, sample), as a decorated tool can. The parameter never appears in the tool's input
schema. Only in-process tools get one: a subprocess tool runs in another interpreter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from conftest import ACCEPT, INIT
from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.skills import SkillCatalog
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


def test_a_subprocess_tool_with_a_context_is_refused_with_a_reason(tmp_path: Path, discover: Any) -> None:
    yaml = """
    tools:
      - name: render
        source_file: scripts/render.py
        function: render
        execution: subprocess
    """
    catalog = _catalog(tmp_path / "root", discover, tools_yaml=yaml)
    assert "render_kit__render" not in {t.name for t in catalog.tools}
    (problem,) = [p for p in catalog.problems if p.rule == "tool-context"]
    assert problem.severity == "error" and "only an in-process tool" in problem.message


def test_through_the_server_progress_and_logs_reach_the_client(tmp_path: Path, spawn_mode: str) -> None:
    write_skill(tmp_path / "root", "render-kit", scripts={"render.py": RENDER})
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
