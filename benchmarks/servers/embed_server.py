"""mcp-embed with one echo tool.

usage: embed_server.py {stateless,stateful}
stateless = McpHttpConfig(port=0, stateless=True, json_response=True); stateful = McpHttpConfig(port=0).
"""

from __future__ import annotations

import sys

from _common import announce

from mcp_embed import McpHttpConfig, create_skill_server


def main() -> None:
    mode = sys.argv[1]
    if mode == "stateless":
        config = McpHttpConfig(port=0, stateless=True, json_response=True)
    else:
        config = McpHttpConfig(port=0)
    server = create_skill_server("bench", config)

    @server.tool()
    def echo(text: str) -> str:
        """Echo."""
        return text

    handle = server.start()
    announce(handle.mcp_url())
    handle.wait()


if __name__ == "__main__":
    main()
