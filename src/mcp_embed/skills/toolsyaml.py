"""``tools.yaml``: explicit tool declarations, with dcc-mcp-core's field names and spellings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..tasks import TaskSupport
from ._model import Affinity, Execution, Severity, SkillProblem
from .frontmatter import load_yaml, yaml_error_line

__all__ = ["ToolDecl", "parse_tools_yaml"]

HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
# dcc-mcp-core's flat spellings of the annotation hints.
HINT_ALIASES = {
    "read_only": "readOnlyHint",
    "destructive": "destructiveHint",
    "idempotent": "idempotentHint",
    "open_world": "openWorldHint",
}
EXECUTIONS: dict[str, Execution] = {
    "in-process": "in-process",
    "in_process": "in-process",
    "inprocess": "in-process",
    "subprocess": "subprocess",
    "sub-process": "subprocess",
}
AFFINITIES: dict[str, Affinity] = {"main": "main", "any": "any"}
# SEP-2663: whether a client may (or must) run the tool as a task; ``true`` means optional
TASKS: dict[Any, TaskSupport] = {
    "forbidden": "forbidden",
    "optional": "optional",
    "required": "required",
    True: "optional",
    False: "forbidden",
}
KNOWN = frozenset(
    {
        "name",
        "description",
        "input_schema",
        "inputSchema",
        "output_schema",
        "outputSchema",
        "source_file",
        "function",
        "execution",
        "affinity",
        "thread_affinity",
        "timeout",
        "timeout_hint_secs",
        "task",
        "annotations",
        "title",
        *HINT_ALIASES,
    }
)
# dcc-mcp-core keys that mean nothing here; accepted without a warning so its skills load quietly.
TOLERATED = frozenset(
    {
        "group",
        "next-tools",
        "next_tools",
        "tags",
        "search-hint",
        "search_hint",
        "category",
        "examples",
        "version",
        "enabled",
        "deprecated",
    }
)


@dataclass(frozen=True)
class ToolDecl:
    """One validated entry of ``tools.yaml``; ``None`` means "not declared"."""

    name: str
    index: int
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    source_file: str | None = None
    function: str | None = None
    execution: Execution | None = None
    affinity: Affinity | None = None
    timeout: float | None = None
    annotations: dict[str, Any] | None = None
    task: TaskSupport | None = None


class _Entry:
    def __init__(self, path: str, skill: str | None, where: str, problems: list[SkillProblem]) -> None:
        self.path, self.skill, self.where, self.problems = path, skill, where, problems
        self.failed = False

    def add(self, severity: Severity, rule: str, message: str, key: str | None = None) -> None:
        self.failed = self.failed or severity == "error"
        full_key = f"{self.where}.{key}" if key else self.where
        self.problems.append(SkillProblem(severity, self.path, rule, message, full_key, None, self.skill))


def _pick(raw: dict[str, Any], entry: _Entry, *spellings: str) -> Any:
    present = [s for s in spellings if s in raw]
    if len(present) > 1:
        entry.add(
            "warning",
            "tool-duplicate-key",
            f"both {' and '.join(present)} given; using {present[0]}",
            present[0],
        )
    return raw[present[0]] if present else None


def _schema(value: Any, key: str, entry: _Entry) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        entry.add("error", "tool-schema", "must be a JSON Schema object (a YAML map)", key)
        return None
    if value.get("type", "object") != "object":
        entry.add("error", "tool-schema", f"must have type 'object', not {value.get('type')!r}", key)
        return None
    return {"type": "object", **value}


def _annotations(raw: dict[str, Any], entry: _Entry) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    declared = raw.get("annotations")
    if declared is not None and not isinstance(declared, dict):
        entry.add("error", "tool-annotations", "must be a map of MCP hints", "annotations")
        declared = None
    for alias, hint in HINT_ALIASES.items():
        if alias in raw:
            found[hint] = raw[alias]
    for key, value in (declared or {}).items():
        if key in HINTS or key == "title":
            found[key] = value
        else:
            entry.add(
                "warning",
                "tool-annotations",
                f"unknown annotation {key!r}; known: title, {', '.join(HINTS)}",
                f"annotations.{key}",
            )
    if isinstance(raw.get("title"), str):
        found.setdefault("title", raw["title"])
    for key, value in list(found.items()):
        if key in HINTS and not isinstance(value, bool):
            entry.add("error", "tool-annotations", f"{key} must be true or false, not {value!r}", key)
            del found[key]
    return found or None


def _entry(
    raw: Any, index: int, path: str, skill: str | None, problems: list[SkillProblem]
) -> ToolDecl | None:
    entry = _Entry(path, skill, f"tools[{index}]", problems)
    if not isinstance(raw, dict):
        entry.add("error", "tool-entry", "each tool must be a map with at least 'name'")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        entry.add("error", "tool-name", "'name' is required and must be a non-empty string", "name")
        return None
    entry.where = f"tools[{name}]"
    for key in raw:
        if key not in KNOWN and key not in TOLERATED:
            entry.add("warning", "unknown-key", f"unknown key {str(key)!r}; ignored", str(key))

    def text(key: str) -> str | None:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            entry.add("error", "field-type", f"must be a string, not {type(value).__name__}", key)
            return None
        return value

    description, source_file, function = text("description"), text("source_file"), text("function")
    input_schema = _schema(_pick(raw, entry, "input_schema", "inputSchema"), "input_schema", entry)
    output_schema = _schema(_pick(raw, entry, "output_schema", "outputSchema"), "output_schema", entry)

    execution: Execution | None = None
    exec_raw = raw.get("execution")
    if exec_raw is not None:
        execution = EXECUTIONS.get(str(exec_raw).lower())
        if execution is None:
            entry.add(
                "error",
                "tool-execution",
                f"must be 'in-process' or 'subprocess', not {exec_raw!r}",
                "execution",
            )
    affinity: Affinity | None = None
    aff_raw = _pick(raw, entry, "affinity", "thread_affinity")
    if aff_raw is not None:
        affinity = AFFINITIES.get(str(aff_raw).lower())
        if affinity is None:
            entry.add("error", "tool-affinity", f"must be 'main' or 'any', not {aff_raw!r}", "affinity")
    timeout: float | None = None
    timeout_raw = _pick(raw, entry, "timeout", "timeout_hint_secs")
    if timeout_raw is not None:
        if isinstance(timeout_raw, bool) or not isinstance(timeout_raw, int | float) or timeout_raw <= 0:
            entry.add(
                "error",
                "tool-timeout",
                f"must be a positive number of seconds, not {timeout_raw!r}",
                "timeout",
            )
        else:
            timeout = float(timeout_raw)
    task: TaskSupport | None = None
    task_raw = raw.get("task")
    if task_raw is not None:
        task = TASKS.get(task_raw) if isinstance(task_raw, bool) else TASKS.get(str(task_raw).lower())
        if task is None:
            entry.add(
                "error",
                "tool-task",
                f"must be 'forbidden', 'optional' or 'required', not {task_raw!r}",
                "task",
            )
    annotations = _annotations(raw, entry)
    if entry.failed:
        return None
    return ToolDecl(
        name.strip(),
        index,
        description,
        input_schema,
        output_schema,
        source_file,
        function,
        execution,
        affinity,
        timeout,
        annotations,
        task,
    )


def parse_tools_yaml(
    text: str, path: str, skill: str | None
) -> tuple[list[ToolDecl] | None, list[SkillProblem]]:
    """Parse a ``tools.yaml`` text. Returns ``None`` for the list when the file as a whole is unusable.

    A bad entry is reported and left out; the other entries still load.
    """
    problems: list[SkillProblem] = []
    try:
        doc = load_yaml(text)
    except Exception as exc:  # any loader failure is "bad YAML"
        detail = str(getattr(exc, "problem", None) or exc).strip().splitlines()
        problems.append(
            SkillProblem(
                "error",
                path,
                "tools-yaml",
                f"invalid YAML: {detail[0] if detail else type(exc).__name__}",
                None,
                yaml_error_line(exc),
                skill,
            )
        )
        return None, problems
    if doc is None:
        return [], problems
    entries = doc.get("tools") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        problems.append(
            SkillProblem(
                "error",
                path,
                "tools-yaml",
                "tools.yaml must be a list of tools or a map with a 'tools' list",
                "tools",
                None,
                skill,
            )
        )
        return None, problems
    decls: list[ToolDecl] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        decl = _entry(raw, index, path, skill, problems)
        if decl is None:
            continue
        if decl.name in seen:
            problems.append(
                SkillProblem(
                    "error",
                    path,
                    "tool-name-unique",
                    f"tool {decl.name!r} is declared twice; the first declaration wins",
                    f"tools[{index}].name",
                    None,
                    skill,
                )
            )
            continue
        seen.add(decl.name)
        decls.append(decl)
    return decls, problems
