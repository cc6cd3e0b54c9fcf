"""The records discovery produces: skills, tools, problems, and the errors a tool call raises."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import McpEmbedError

if TYPE_CHECKING:
    from ..context import ToolContext
    from ..tasks import TaskSupport

Severity = Literal["error", "warning"]
Affinity = Literal["main", "any"]
Execution = Literal["in-process", "subprocess"]


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
    #: The function's parameter that takes the call's ``ToolContext``.
    context_param: str | None = None
    #: SEP-2663: whether a client may (``optional``) or must (``required``) run it as a task.
    task: TaskSupport = "forbidden"
    _validator: Any = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def validate(self, arguments: dict[str, Any]) -> None:
        """Check ``arguments`` against the schema; raise :class:`SkillArgumentError` naming a field."""
        from .execute import validate_arguments

        validate_arguments(self, arguments)

    def invoke(
        self,
        arguments: dict[str, Any],
        cancelled: Callable[[], bool] | None = None,
        ctx: ToolContext | None = None,
    ) -> Any:
        """Validate, run, and return a JSON-able result; raise :class:`SkillToolError` on failure.

        A subprocess tool polls ``cancelled`` while it runs, and kills its process tree once it is
        true. An in-process function with a ``ToolContext`` parameter gets ``ctx`` (a detached
        context, whose progress and logs go nowhere, when there is no call behind it).
        """
        from .execute import invoke_tool

        return invoke_tool(self, arguments, cancelled, ctx)

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


class SkillCatalog:
    """Everything one discovery found: the winners, their tools, the problems and the shadowed copies.

    A catalog from ``discover_skills(..., lazy=True)`` knows every skill (its header and ``tools.yaml``)
    but analyses a skill's scripts only when its tools are first asked for: :attr:`tools` analyses all
    of them, :meth:`tools_of` one skill. The problems found on the way are appended to :attr:`problems`.
    """

    def __init__(self) -> None:
        self.skills: list[Skill] = []
        self.problems: list[SkillProblem] = []
        self.shadowed: list[ShadowedSkill] = []
        self.other_hosts: list[Skill] = []
        self.roots: list[Path] = []
        self._tools: dict[str, list[SkillTool]] = {}
        self._pending: dict[str, Callable[[], list[SkillTool]]] = {}
        self._index: dict[str, int] = {}  # skill name -> its place in ``skills``
        self._listeners: list[Callable[[str, list[SkillTool]], None]] = []
        self._after: Callable[[], None] | None = None  # runs after a batch of resolutions (cache save)
        self._batching = False
        self._lock = threading.RLock()

    def skill(self, name: str) -> Skill | None:
        """The skill called ``name``, or ``None``."""
        return next((s for s in self.skills if s.name == name), None)

    @property
    def tools(self) -> list[SkillTool]:
        """Every tool of every skill, in skill order (analysing the scripts not analysed yet)."""
        self.resolve()
        return [t for s in self.skills for t in self._tools.get(s.name, ())]

    def tools_of(self, skill: str) -> list[SkillTool]:
        """The tools of one skill (``[]`` for an unknown skill), analysing its scripts if needed."""
        self.resolve([skill])
        return list(self._tools.get(skill, ()))

    def tool(self, name: str) -> SkillTool | None:
        """The tool called ``name``, or ``None``."""
        return next((t for t in self.tools if t.name == name), None)

    @property
    def pending(self) -> list[str]:
        """The skills whose scripts are not analysed yet, in skill order."""
        with self._lock:
            return [s.name for s in self.skills if s.name in self._pending]

    def is_pending(self, skill: str) -> bool:
        """Whether ``skill``'s scripts are still to be analysed."""
        return skill in self._pending

    def resolve(self, skills: Iterable[str] | None = None) -> None:
        """Analyse the scripts of ``skills`` (default: all) that are still pending."""
        with self._lock:
            names = list(self._pending) if skills is None else [n for n in skills if n in self._pending]
            if not names:
                return
            for name in names:
                self._resolve_one(name)
            if self._after is not None and not self._batching:
                self._after()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Resolve several skills one by one and save the parse cache once, at the end."""
        with self._lock:
            outer, self._batching = self._batching, True
            try:
                yield
            finally:
                self._batching = outer
                if not outer and self._after is not None:
                    self._after()

    def _resolve_one(self, name: str) -> None:
        tools = self._pending.pop(name)()
        self._tools[name] = tools
        i = self._index[name]
        self.skills[i] = replace(self.skills[i], tool_names=tuple(t.name for t in tools))
        for listener in list(self._listeners):
            listener(name, tools)

    def on_resolve(self, listener: Callable[[str, list[SkillTool]], None]) -> None:
        """Call ``listener(skill, tools)`` whenever a pending skill's tools are analysed."""
        self._listeners.append(listener)

    def _add(self, skill: Skill, tools: Callable[[], list[SkillTool]] | list[SkillTool]) -> None:
        self._index[skill.name] = len(self.skills)
        self.skills.append(skill)
        if callable(tools):
            self._pending[skill.name] = tools
        else:
            self._tools[skill.name] = tools

    @property
    def errors(self) -> list[SkillProblem]:
        return [p for p in self.problems if p.severity == "error"]
