"""The gateway: one MCP server in front of every registered instance (``mcp-embed gateway``)."""

from __future__ import annotations

from .gateway import Gateway, create_gateway

__all__ = ["Gateway", "create_gateway"]
