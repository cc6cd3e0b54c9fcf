"""One instance for the gateway's end-to-end tests, in its own process.

``python instance_proc.py APP [KEY=VALUE ...]``: serves ``echo``, ``steps`` (progress), ``hold``
(runs until cancelled), ``cancellations`` (how many ``hold`` calls saw their cancellation), ``ask``
(elicits a name, saying what the client answered: accept, decline, cancel or the error),
``sample`` (asks the client's model likewise), ``asked`` (what each ask ended with), the
resource ``app://scene/current`` and template ``app://shots/{name}`` (both saying which app,
scene and pid answer), and the prompts ``review`` and ``strict`` (which answers a JSON-RPC error
for a ``level`` not low or high) on port 0, lists itself in the registry the environment names
(``MCP_EMBED_REGISTRY_DIR``, or ``MCP_EMBED_REDIS_URL``, ``MCP_EMBED_INSTANCE_HOST``), sets the
metadata given, prints ``URL <mcp url>`` and serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time

from mcp_embed import EmbeddedResource, McpError, McpHttpConfig, ToolContext, ToolError, create_skill_server
from mcp_embed.errors import INVALID_PARAMS


def main() -> int:
    app = sys.argv[1]
    metadata = dict(arg.split("=", 1) for arg in sys.argv[2:])
    server = create_skill_server(app, McpHttpConfig.from_env(port=0, enable_file_logging=False))
    seen = {"cancelled": 0}

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back, saying which app answered."""
        return f"{app}:{text}"

    @server.tool()
    def steps(n: int, ctx: ToolContext) -> int:
        """Report n progress steps."""
        for i in range(n):
            ctx.report_progress(i + 1, n, f"step {i + 1}")
        return n

    @server.tool()
    def hold(ctx: ToolContext) -> str:
        """Run until cancelled (at most 60 s); one progress report when it starts."""
        ctx.report_progress(0, None, "holding")
        deadline = time.monotonic() + 60
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        if ctx.cancelled:
            seen["cancelled"] += 1
        return "stopped"

    @server.tool()
    def cancellations() -> int:
        """How many hold calls saw their cancellation."""
        return seen["cancelled"]

    ended: list[str] = []

    @server.tool()
    async def ask(question: str, ctx: ToolContext) -> str:
        """Ask the client for a name; say what came back and whether the client said it can elicit."""
        schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        said = "can elicit" if ctx.supports("elicitation") else "cannot elicit"
        try:
            answer = await ctx.elicit(question, schema)
            outcome = f"{answer.action} {json.dumps(answer.content, sort_keys=True)}"
        except McpError as exc:
            outcome = f"McpError {exc.code}: {exc.message}"
        except ToolError as exc:
            outcome = f"ToolError: {exc}"
        except asyncio.CancelledError:
            ended.append(f"{question}: cancelled")
            raise
        ended.append(f"{question}: {outcome}")
        return f"{said}; {outcome}"

    @server.tool()
    async def sample(prompt: str, ctx: ToolContext) -> str:
        """Ask the client's model; say which model answered what."""
        try:
            answer = await ctx.sample(prompt, max_tokens=20, system_prompt="be brief")
        except McpError as exc:
            return f"McpError {exc.code}: {exc.message}"
        return f"{answer.model}: {answer.text}"

    @server.tool()
    def asked() -> list[str]:
        """How each ask call ended, oldest first."""
        return list(ended)

    def who() -> str:
        return f"{app} {metadata.get('scene', '-')} pid {os.getpid()}"

    @server.resource("app://scene/current")
    def current() -> str:
        """The open scene."""
        return who()

    @server.resource("app://shots/{name}")
    def shot(name: str) -> str:
        """One shot of the scene."""
        return f"{name} in {who()}"

    @server.prompt()
    def review(focus: str, depth: str = "quick") -> list[object]:
        """Review the scene.

        Args:
            focus: What to look at.
            depth: quick or full.
        """
        return [
            f"{depth} review of {focus} by {who()}",
            EmbeddedResource(uri="app://scene/current", text=who()),
        ]

    @server.prompt()
    def strict(level: str) -> str:
        """A prompt that refuses a level it does not know."""
        if level not in ("low", "high"):
            raise McpError(INVALID_PARAMS, f"level {level!r} is not low or high", {"level": level})
        return f"{level} by {who()}"

    handle = server.start()
    if metadata:
        handle.set_metadata(**metadata)
    print(f"URL {handle.mcp_url()}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    handle.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
