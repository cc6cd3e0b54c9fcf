"""The records discovery produces: skills, tools, problems, and the errors a tool call raises."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import McpEmbedError, ToolError

Severity = Literal["error", "warning"]
Affinity = Literal["main", "any"]
Execution = Literal["in-process", "subprocess"]

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


class SkillResourceError(McpEmbedError, LookupError):
    """A skill resource URI is unknown, unsafe (escapes its skill folder) or unreadable."""


@dataclass(frozen=True)
class SkillProblem:
    """One thing wrong with a skill: which file, which key, which rule, and how bad."""

    severity: Severity
    path: str
    rule: str
    message: str
    key: str | None = None
    line: int | None = None
    skill: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        key = f" [{self.key}]" if self.key else ""
        return f"{where}: {self.severity}{key}: {self.message} ({self.rule})"


@dataclass(frozen=True)
class Skill:
    """A loaded skill folder."""

    name: str
    description: str
    path: Path
    root: Path
    metadata: dict[str, str] = field(default_factory=dict)
    dcc: tuple[str, ...] = ()
    license: str | None = None
    compatibility: str | None = None
    allowed_tools: str | None = None
    version: str | None = None
    tool_names: tuple[str, ...] = ()

    @property
    def skill_md(self) -> Path:
        return self.path / "SKILL.md"


@dataclass(frozen=True)
class ShadowedSkill:
    """A skill that lost to a same-named skill in a root of higher priority."""

    name: str
    path: Path
    shadowed_by: Path


@dataclass(eq=False)
class SkillTool:
    """One callable tool of a skill, ready for a registry.

    ``invoke`` is synchronous and runs in the calling thread (in-process) or in a child process
    (subprocess); honouring ``affinity`` is the dispatcher's job.
    """

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, Any] | None
    affinity: Affinity
    execution: Execution
    timeout: float | None
    skill: str
    source_file: Path | None = None
    function: str | None = None
    interpreter: str | None = None
    enum_params: dict[str, str] = field(default_factory=dict)
    _validator: Any = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def validate(self, arguments: dict[str, Any]) -> None:
        """Check ``arguments`` against the schema; raise :class:`SkillArgumentError` naming a field."""
        from .execute import validate_arguments

        validate_arguments(self, arguments)

    def invoke(self, arguments: dict[str, Any]) -> Any:
        """Validate, run, and return a JSON-able result; raise :class:`SkillToolError` on failure."""
        from .execute import invoke_tool

        return invoke_tool(self, arguments)

    def to_dict(self) -> dict[str, Any]:
        """The tool as an MCP ``tools/list`` entry (camelCase keys, empty parts left out)."""
        entry: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        }
        if self.output_schema is not None:
            entry["outputSchema"] = self.output_schema
        if self.annotations:
            entry["annotations"] = self.annotations
        return entry


@dataclass
class SkillCatalog:
    """Everything one discovery found: the winners, their tools, the problems and the shadowed copies."""

    skills: list[Skill] = field(default_factory=list)
    tools: list[SkillTool] = field(default_factory=list)
    problems: list[SkillProblem] = field(default_factory=list)
    shadowed: list[ShadowedSkill] = field(default_factory=list)
    other_hosts: list[Skill] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)

    def skill(self, name: str) -> Skill | None:
        """The skill called ``name``, or ``None``."""
        return next((s for s in self.skills if s.name == name), None)

    def tool(self, name: str) -> SkillTool | None:
        """The tool called ``name``, or ``None``."""
        return next((t for t in self.tools if t.name == name), None)

    @property
    def errors(self) -> list[SkillProblem]:
        return [p for p in self.problems if p.severity == "error"]
