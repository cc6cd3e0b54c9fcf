"""One instance for the gateway's end-to-end tests, in its own process.

``python instance_proc.py APP [KEY=VALUE ...]``: serves ``echo``, ``steps`` (progress), ``hold``
(runs until cancelled) and ``cancellations`` (how many ``hold`` calls saw their cancellation) on
port 0, lists itself in the registry the environment names (``MCP_EMBED_REGISTRY_DIR``, or
``MCP_EMBED_REDIS_URL``, ``MCP_EMBED_INSTANCE_HOST``), sets the metadata given, prints
``URL <mcp url>`` and serves until killed.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from mcp_embed import McpHttpConfig, ToolContext, create_skill_server


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
