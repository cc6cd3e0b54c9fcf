"""The SEP-2640 skills extension on the SDK server: ``skills/list``, ``skills/get`` and
``resources/directory/read``, answered from :mod:`mcp_embed.skills.extension` (this process's
catalog) or, in a ``spawn_mode="subprocess"`` child, by the host."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import McpError
from ..skills.extension import SKILLS_EXTENSION, answer
from .handlers import is_modern

if TYPE_CHECKING:
    from mcp.server.lowlevel.server import Server

    from ..components import Components

__all__ = ["install"]


def install(low: Server[Any], components: Components) -> None:
    """Declare the extension on ``low`` and register its three methods.

    ``components.skills_forward`` answers instead of this process's catalog: a
    ``spawn_mode="subprocess"`` child asks the host, which holds the skills.
    """
    from mcp.shared.exceptions import MCPError
    from mcp_types import RequestParams

    class ListParams(RequestParams):
        cursor: str | None = None

    class UriParams(RequestParams):
        uri: str

    class DirectoryParams(UriParams):
        cursor: str | None = None

    forward = components.skills_forward

    def handler(method: str) -> Callable[[Any, Any], Awaitable[dict[str, Any]]]:
        async def handle(ctx: Any, params: Any) -> dict[str, Any]:
            args = {k: getattr(params, k) for k in ("uri", "cursor") if getattr(params, k, None) is not None}
            try:
                out = await (forward or functools.partial(answer, components))(method, args)
            except McpError as exc:
                raise MCPError(code=exc.code, message=exc.message, data=exc.data) from None
            if is_modern(ctx):
                # 2026-07-28: resultType, and cache hints as on resources/read (skills reload: never cache).
                out = {"resultType": "complete", **out, "ttlMs": 0, "cacheScope": "private"}
            return out

        return handle

    low.add_request_handler("skills/list", ListParams, handler("skills/list"))
    low.add_request_handler("skills/get", UriParams, handler("skills/get"))
    low.add_request_handler("resources/directory/read", DirectoryParams, handler("resources/directory/read"))
    low.extensions[SKILLS_EXTENSION] = {"directoryRead": True}
