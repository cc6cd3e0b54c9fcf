"""The errors a skill tool call raises, and the timeout a subprocess tool gets when it declares none.

A leaf module: the records (``_model``) and the code that runs them (``execute``) both import it.
"""

from __future__ import annotations

from ..errors import McpEmbedError, ToolError

__all__ = ["DEFAULT_SUBPROCESS_TIMEOUT", "SkillArgumentError", "SkillToolError"]

# Applied to subprocess tools that declare no timeout, so a hung script never hangs its caller forever.
DEFAULT_SUBPROCESS_TIMEOUT = 300.0


class SkillArgumentError(McpEmbedError, ValueError):
    """The arguments of a skill tool call do not match its input schema. ``field`` names the culprit."""

    def __init__(self, tool: str, field: str, message: str) -> None:
        self.tool = tool
        self.field = field
        where = f"argument '{field}'" if field else "arguments"
        super().__init__(f"{tool}: invalid {where}: {message}")


class SkillToolError(ToolError):
    """A skill tool failed: the script raised, exited non-zero, timed out or returned garbage."""

    def __init__(self, tool: str, message: str, *, timed_out: bool = False) -> None:
        self.tool = tool
        self.timed_out = timed_out
        super().__init__(f"{tool}: {message}")
