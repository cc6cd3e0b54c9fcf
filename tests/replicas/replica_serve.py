"""``mcp-embed serve`` with three test tools added: run as ``python replica_serve.py serve ...``.

The example skills report no progress, ask nothing and run as no SEP-2663 task. This runs the
real CLI (the same flags, environment, start-up and SIGTERM handling) and adds, to the server it
creates, the tools the end-to-end replica tests need:

- ``slow_steps(n, delay)``: ``n`` progress notifications ``delay`` seconds apart, then a result;
- ``ask()``: one elicitation, and the answer as its result;
- ``long_job(seconds)``: a SEP-2663 task (``task="optional"``) that reports progress at once.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

import mcp_embed
from mcp_embed import SkillServer, ToolContext
from mcp_embed.cli import main

NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
_create = mcp_embed.create_skill_server


def _with_test_tools(*args: Any, **kwargs: Any) -> SkillServer:
    server = _create(*args, **kwargs)

    @server.tool()
    async def slow_steps(n: int, delay: float, ctx: ToolContext) -> str:
        """Report n progress steps, ``delay`` seconds apart."""
        for i in range(n):
            ctx.report_progress(i + 1, n, f"step {i + 1}")
            await anyio.sleep(delay)
        return f"{n} slow steps"

    @server.tool()
    async def ask(ctx: ToolContext) -> str:
        """Ask the user for a name."""
        answer = await ctx.elicit("name?", NAME)
        return json.dumps({"action": answer.action, "content": answer.content})

    @server.tool(task="optional")
    async def long_job(seconds: float, ctx: ToolContext) -> str:
        """Hand over a task at once, then work for ``seconds``."""
        ctx.report_progress(0, 1, "started")
        await anyio.sleep(seconds)
        return f"worked {seconds} s"

    return server


mcp_embed.create_skill_server = _with_test_tools  # the CLI looks it up when it serves

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
