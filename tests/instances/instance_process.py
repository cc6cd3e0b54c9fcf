"""One host process for the end-to-end tests: a server on port 0 that lists itself, sets its
metadata, writes where it is to a file, and serves until killed (SIGTERM stops it cleanly).

    python instance_process.py APP SCENE READY_FILE [INSTANCE_HOST] [SPAWN_MODE]

The registry comes from the environment (MCP_EMBED_REGISTRY_DIR, MCP_EMBED_REGISTRY_TTL, and
MCP_EMBED_REDIS_URL for the Redis registry).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from mcp_embed import McpHttpConfig, create_skill_server


def main() -> None:
    app, scene, ready_file = sys.argv[1:4]
    host = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    mode = sys.argv[5] if len(sys.argv) > 5 else "dedicated"
    config = McpHttpConfig.from_env(port=0, instance_host=host, spawn_mode=mode, enable_file_logging=False)
    server = create_skill_server(app, config)

    @server.tool()
    def ping() -> str:
        """Answer pong."""
        return "pong"

    handle = server.start()
    handle.set_metadata(scene=scene, frames=[1, 24])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    temp = ready_file + ".tmp"
    with open(temp, "w", encoding="utf-8") as fh:
        json.dump({"id": handle.instance_id, "url": handle.mcp_url(), "pid": os.getpid()}, fh)
    os.replace(temp, ready_file)
    try:
        while not stop.wait(0.2) and handle.is_running:
            pass
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
