"""``McpError``: raise it from a tool, prompt or resource to answer with a JSON-RPC error.

It is the SDK's own ``MCPError`` (re-exported, so ``except McpError`` also catches the SDK's).
A tool raising anything else gets an ``isError`` result instead; raise this only when the
request itself is wrong, e.g. a missing client capability::

    raise McpError(MISSING_REQUIRED_CLIENT_CAPABILITY, "needs sampling",
                   {"requiredCapabilities": {"sampling": {}}})
"""

from __future__ import annotations

from mcp.shared.exceptions import MCPError as McpError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY

__all__ = ["INTERNAL_ERROR", "INVALID_PARAMS", "MISSING_REQUIRED_CLIENT_CAPABILITY", "McpError"]
