"""The tool naming rule: ``<skill with '-' as '_'>__<tool>``.

Skill names use only ``a-z0-9-`` with no doubled ``-``, so the prefix never holds ``__`` and the first ``__``
of a tool name always ends it: two skills can never produce the same tool name. The result matches
dcc-mcp-core's names (``maya_geometry__create_sphere``) and uses only ``[A-Za-z0-9_-]``, which every MCP
client and every LLM provider's function-name rule accepts.
"""

from __future__ import annotations

import re

__all__ = ["SEPARATOR", "TOOL_NAME_RE", "check_tool_name", "skill_prefix", "split_tool_name", "tool_name"]

SEPARATOR = "__"
# SEP-986, as enforced by ``mcp.shared.tool_name_validation.TOOL_NAME_REGEX``.
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
PORTABLE_MAX = 64  # OpenAI-style function-calling limit; longer names work in MCP but not everywhere


def skill_prefix(skill: str) -> str:
    """The tool-name prefix of a skill: its name with ``-`` spelled ``_``."""
    return skill.replace("-", "_")


def tool_name(skill: str, tool: str) -> str:
    """The MCP name of ``tool`` in ``skill``."""
    return f"{skill_prefix(skill)}{SEPARATOR}{tool}"


def split_tool_name(name: str) -> tuple[str, str] | None:
    """``(skill, tool)`` for a skill tool name, or ``None`` when ``name`` has no ``__``."""
    prefix, sep, tool = name.partition(SEPARATOR)
    return (prefix.replace("_", "-"), tool) if sep and prefix and tool else None


def check_tool_name(name: str) -> tuple[str | None, str | None]:
    """``(error, warning)`` for a full tool name; an error means MCP clients would reject it."""
    if not TOOL_NAME_RE.fullmatch(name):
        return (
            f"tool name {name!r} is not a valid MCP tool name: 1-128 characters of A-Z a-z 0-9 _ - .",
            None,
        )
    if "." in name:
        return None, f"tool name {name!r} contains '.', which some LLM providers reject in function names"
    if len(name) > PORTABLE_MAX:
        return None, f"tool name {name!r} is longer than {PORTABLE_MAX} characters, which some clients reject"
    return None, None
