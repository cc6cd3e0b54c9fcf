"""The tools of one skill folder: its ``tools.yaml`` declarations merged with its scripts, or inferred.

:class:`SkillToolLoader` reads ``tools.yaml`` (or ``metadata.tools``) and the Python scripts under
``scripts/`` through the parse cache, finds each declared tool's source and function, and builds the
:class:`SkillTool` list. Scripts are read with :mod:`ast`, never imported or run. Nothing here raises on
a bad tool: its problems are collected and the tool, or the whole skill when ``tools.yaml`` is unusable,
is left out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._cache import ParseCache
from ._model import SkillProblem, SkillTool
from .frontmatter import SkillHeader
from .infer import FunctionInfo, ScriptInfo, ToolSpec, analyze_script, build_input_schema
from .naming import check_tool_name, tool_name
from .toolsyaml import ToolDecl, parse_tools_yaml

__all__ = ["SKILL_FILE", "SkillToolLoader", "read_file", "stat_file"]

SKILL_FILE = "SKILL.md"
TOOLS_FILE = "tools.yaml"
SCRIPTS_DIR = "scripts"
SCRIPT_SUFFIXES = {".sh", ".bat", ".cmd", ".ps1"}


def stat_file(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def read_file(path: str, skill: str | None, *, text: bool) -> tuple[Any, SkillProblem | None]:
    """The bytes (or UTF-8 text) of ``path``, or ``None`` and the problem that stopped it."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        return (data.decode("utf-8-sig") if text else data), None
    except OSError as exc:
        message, rule = f"cannot read: {exc.strerror}", "unreadable"
    except UnicodeDecodeError as exc:
        message, rule = f"not valid UTF-8: {exc.reason} at byte {exc.start}", "encoding"
    return None, SkillProblem("error", path, rule, message, None, None, skill)


def _inside(folder: str, rel: str) -> str | None:
    """``folder/rel`` when ``rel`` is relative and stays inside ``folder`` (no ``..``), else ``None``."""
    parts = rel.replace("\\", "/").split("/")
    if not rel or os.path.isabs(rel) or ".." in parts or ":" in parts[0]:
        return None
    return os.path.join(folder, *parts)


class SkillToolLoader:
    """Builds the tools of one skill folder, collecting problems instead of raising."""

    def __init__(
        self,
        folder: str,
        header: SkillHeader,
        interpreter: str | None,
        cache: ParseCache,
        problems: list[SkillProblem],
        *,
        analyze_all: bool = False,
    ) -> None:
        self.folder = folder
        self.cache = cache
        self.skill_md = os.path.join(folder, SKILL_FILE)
        self.header = header
        self.skill = header.name
        self.interpreter = interpreter
        self.problems = problems
        self.analyze_all = analyze_all
        self.scripts_dir = os.path.join(folder, SCRIPTS_DIR)
        self._scripts: dict[str, ScriptInfo] = {}
        self.tools: list[SkillTool] = []
        self.failed = False  # tools.yaml is unusable: the whole skill is left out
        self._names: set[str] = set()
        self._paths: dict[str, Path] = {}

    def problem(
        self,
        severity: Any,
        path: str,
        rule: str,
        message: str,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.problems.append(SkillProblem(severity, path, rule, message, key, line, self.skill))

    def script(self, path: str, stat: os.stat_result | None = None) -> ScriptInfo | None:
        """The analysis of the Python script at ``path`` (its problems reported once per discovery)."""
        if path in self._scripts:
            return self._scripts[path]
        stat = stat or stat_file(path)
        if stat is None:
            return None

        def parse() -> ScriptInfo:
            data, problem = read_file(path, self.skill, text=False)
            return (
                ScriptInfo(problems=(problem,), ok=False)
                if problem
                else analyze_script(data, path, self.skill)
            )

        info = self.cache.get("script", path, stat, parse)
        self.problems.extend(info.problems)
        self._scripts[path] = info
        return info

    def path(self, path: str) -> Path:
        """One ``Path`` per script, shared by its tools."""
        found = self._paths.get(path)
        if found is None:
            found = self._paths[path] = Path(path)
        return found

    def python_scripts(self) -> list[tuple[str, os.DirEntry[str]]]:
        try:
            with os.scandir(self.scripts_dir) as it:
                entries = [
                    e
                    for e in it
                    if e.name.endswith(".py") and not e.name.startswith((".", "_")) and e.is_file()
                ]
        except OSError:
            return []
        return sorted(((e.name, e) for e in entries), key=lambda pair: pair[0])

    def load(self, decls: list[ToolDecl] | None = None) -> list[SkillTool]:
        """The skill's tools: from ``decls`` (its ``tools.yaml``, read now when not given) or inferred."""
        if decls is None:
            decls = self.declarations()
            if decls is None:
                self.failed = True
                return []
        if self.analyze_all or not decls:
            scripts = self.python_scripts()
            for _name, entry in scripts:
                self.script(entry.path, entry.stat())
            if not decls:
                for _name, entry in scripts:
                    for spec in self._scripts[entry.path].specs:
                        self.add_inferred(entry.path, spec)
                return self.tools
        for decl in decls:
            self.add_declared(decl)
        return self.tools

    def declarations(self) -> list[ToolDecl] | None:
        """The ``tools.yaml`` entries; ``[]`` without the file, ``None`` when it is unusable."""
        rel = self.header.tools_file or TOOLS_FILE
        path = _inside(self.folder, rel)
        if path is None:
            self.problem(
                "error",
                self.skill_md,
                "tools-file",
                f"tools file {rel!r} must be a relative path inside the skill folder",
                "metadata.tools",
            )
            return None
        stat = stat_file(path)
        if stat is None:
            if self.header.tools_file:
                self.problem(
                    "warning",
                    self.skill_md,
                    "tools-file",
                    f"tools file {rel!r} does not exist; inferring tools from scripts",
                    "metadata.tools",
                )
            return []

        def parse() -> tuple[list[ToolDecl] | None, list[SkillProblem]]:
            text, problem = read_file(path, self.skill, text=True)
            return (None, [problem]) if problem else parse_tools_yaml(text, path, self.skill)

        decls, problems = self.cache.get("tools", path, stat, parse)
        self.problems.extend(problems)
        return decls

    def add(self, tool: SkillTool, path: str, key: str | None, line: int | None = None) -> None:
        error, warning = check_tool_name(tool.name)
        if error:
            self.problem("error", path, "tool-name", error, key, line)
            return
        if warning:
            self.problem("warning", path, "tool-name", warning, key, line)
        if tool.name in self._names:
            self.problem(
                "error",
                path,
                "tool-name-unique",
                f"tool {tool.name!r} is already defined by an earlier script of this skill; "
                "rename the function or declare the tools in tools.yaml",
                key,
                line,
            )
            return
        self._names.add(tool.name)
        self.tools.append(tool)

    def add_inferred(self, path: str, spec: ToolSpec) -> None:
        self.problems.extend(spec.problems)
        self.add(
            SkillTool(
                name=tool_name(self.skill, spec.function),
                description=spec.description,
                input_schema=spec.input_schema,
                output_schema=None,
                annotations=None,
                affinity="main",
                execution="in-process",
                timeout=None,
                skill=self.skill,
                source_file=self.path(path),
                function=spec.function,
                interpreter=self.interpreter,
                enum_params=spec.enum_params,
                context_param=spec.context,
            ),
            path,
            spec.function,
            spec.line,
        )

    def find_source(self, decl: ToolDecl, tools_path: str, key: str) -> str | None:
        if decl.source_file is not None:
            path = _inside(self.folder, decl.source_file)
            if path is None:
                self.problem(
                    "error",
                    tools_path,
                    "tool-source",
                    f"source_file {decl.source_file!r} must be a relative path inside the skill folder",
                    f"{key}.source_file",
                )
                return None
            if not os.path.isfile(path):
                self.problem(
                    "error",
                    tools_path,
                    "tool-source",
                    f"source_file {decl.source_file!r} does not exist",
                    f"{key}.source_file",
                )
                return None
            return path
        conventional = os.path.join(self.scripts_dir, f"{decl.name}.py")
        if os.path.isfile(conventional):
            return conventional
        wanted = decl.function or decl.name
        for _name, entry in self.python_scripts():
            info = self.script(entry.path, entry.stat())
            if info is not None and wanted in info.functions:
                return entry.path
        self.problem(
            "error",
            tools_path,
            "tool-source",
            f"no source_file given and no script in scripts/ defines {wanted!r}",
            key,
        )
        return None

    def add_declared(self, decl: ToolDecl) -> None:
        tools_path = os.path.join(self.folder, self.header.tools_file or TOOLS_FILE)
        key = f"tools[{decl.name}]"
        source = self.find_source(decl, tools_path, key)
        if source is None:
            return
        name = tool_name(self.skill, decl.name)
        fn: FunctionInfo | None = None
        function = decl.function
        execution = decl.execution or "in-process"
        if source.endswith(".py"):
            info = self.script(source)
            if info is None or not info.ok:
                self.problem(
                    "error",
                    tools_path,
                    "tool-source",
                    f"{name}: {os.path.relpath(source, self.folder)} cannot be read; tool left out",
                    key,
                )
                return
            if function is None:
                function = next((f for f in (decl.name, "main") if f in info.functions), None)
            if function is not None:
                fn = info.functions.get(function)
                if fn is None:
                    self.problem(
                        "error",
                        tools_path,
                        "tool-function",
                        f"{os.path.relpath(source, self.folder)} has no top-level function {function!r}",
                        f"{key}.function",
                    )
                    return
        elif os.path.splitext(source)[1].lower() not in SCRIPT_SUFFIXES:
            self.problem(
                "error",
                tools_path,
                "tool-source",
                f"source_file must be .py, .sh, .bat, .cmd or .ps1, not {decl.source_file!r}",
                f"{key}.source_file",
            )
            return
        if function is None and execution == "in-process":
            if decl.execution is not None:
                self.problem(
                    "warning",
                    tools_path,
                    "tool-execution",
                    f"{name}: a whole-script tool (no function) always runs as a subprocess",
                    key,
                )
            execution = "subprocess"
        if fn is not None:
            schema, problems = build_input_schema(  # its warnings point at the script's line
                fn, decl.input_schema, path=source, skill=self.skill, tool=name
            )
            self.problems.extend(problems)
        else:
            schema = decl.input_schema or {"type": "object"}
        description = decl.description if decl.description is not None else (fn.description if fn else "")
        self.add(
            SkillTool(
                name=name,
                description=description,
                input_schema=schema,
                output_schema=decl.output_schema,
                annotations=decl.annotations,
                affinity=decl.affinity or ("main" if execution == "in-process" else "any"),
                execution=execution,
                timeout=decl.timeout,
                skill=self.skill,
                source_file=self.path(source),
                function=function,
                interpreter=self.interpreter,
                enum_params=fn.enum_params() if fn else {},
                context_param=fn.context if fn else None,
                task=decl.task or "forbidden",
            ),
            tools_path,
            key,
        )
