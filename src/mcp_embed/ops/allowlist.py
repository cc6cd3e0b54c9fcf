"""The tool allow-list: names and glob patterns a client may see and call.

A tool outside the list is absent from ``tools/list``, and calling it gets the very error an
unknown tool gets (JSON-RPC -32602 ``Unknown tool: <name>``), so a client cannot tell a hidden
tool from a missing one. The refusal is audited as ``tool_denied``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping

__all__ = ["ENV_VAR", "ToolAllowList", "from_config"]

ENV_VAR = "MCP_EMBED_ALLOWED_TOOLS"


class ToolAllowList:
    """Matches tool names against exact names and ``fnmatch`` globs (``*``, ``?``, ``[ab]``)."""

    __slots__ = ("_cache", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.strip() for p in patterns if p.strip())
        alternatives = "|".join(fnmatch.translate(p) for p in self.patterns)
        self._regex = re.compile(alternatives) if alternatives else None
        self._cache: dict[str, bool] = {}

    def allows(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            hit = self._regex is not None and self._regex.fullmatch(name) is not None
            if len(self._cache) < 10_000:
                self._cache[name] = hit
        return hit

    def __repr__(self) -> str:
        return f"ToolAllowList({list(self.patterns)!r})"


class _Both(ToolAllowList):
    """A tool must be allowed by every list (the config's and the environment's)."""

    __slots__ = ("lists",)

    def __init__(self, lists: list[ToolAllowList]) -> None:
        super().__init__([])
        self.lists = lists
        self.patterns = tuple(p for lst in lists for p in lst.patterns)

    def allows(self, name: str) -> bool:
        return all(lst.allows(name) for lst in self.lists)


def from_config(
    allowed: Iterable[str] | None, environ: Mapping[str, str] | None = None
) -> ToolAllowList | None:
    """The effective allow-list: ``allowed_tools``, narrowed by ``MCP_EMBED_ALLOWED_TOOLS``.

    ``None`` when neither is set (every tool allowed). An empty list allows no tool.
    """
    env = os.environ if environ is None else environ
    lists: list[ToolAllowList] = []
    if allowed is not None:
        lists.append(ToolAllowList(allowed))
    raw = env.get(ENV_VAR)
    if raw is not None:
        from_env = ToolAllowList(raw.split(","))
        if not lists or from_env.patterns != lists[0].patterns:
            lists.append(from_env)
    if not lists:
        return None
    return lists[0] if len(lists) == 1 else _Both(lists)
