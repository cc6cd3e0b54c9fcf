"""Finding skills: roots in priority order, shadowing, host filtering, and turning folders into tools.

Discovery reads each file at most once (and not at all when the parse cache already holds it unchanged),
parses YAML with the C safe loader, reads scripts with :mod:`ast`, and never imports or runs them.
Nothing here raises on a bad skill: problems are collected and the skill, or just the tool, is left out.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _cache
from ._cache import ParseCache
from ._model import ShadowedSkill, Skill, SkillCatalog, SkillProblem, SkillTool
from .frontmatter import SkillHeader, parse_skill_md
from .infer import FunctionInfo, ScriptInfo, ToolSpec, analyze_script, build_input_schema
from .naming import check_tool_name, tool_name
from .roots import app_key, env_var_name, skill_roots
from .toolsyaml import ToolDecl, parse_tools_yaml

__all__ = ["app_key", "discover_skills", "env_var_name", "skill_roots", "validate_skill"]

SKILL_FILE = "SKILL.md"
TOOLS_FILE = "tools.yaml"
SCRIPTS_DIR = "scripts"
GENERIC = "generic"
SCRIPT_SUFFIXES = {".sh", ".bat", ".cmd", ".ps1"}


def clear_cache() -> None:
    """Forget every file parsed in this process (the disk cache is read again by the next discovery)."""
    _cache.clear()


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _read(path: str, skill: str | None, *, text: bool) -> tuple[Any, SkillProblem | None]:
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


# -- phase 1: candidate folders and their headers


@dataclass(frozen=True)
class _Candidate:
    name: str
    path: str
    root: Path
    header: SkillHeader


def _candidate_dirs(root: Path) -> list[tuple[str, str]]:
    if os.path.isfile(os.path.join(root, SKILL_FILE)):
        return [(root.name, str(root))]
    try:
        with os.scandir(root) as it:
            dirs = [(e.name, e.path) for e in it if not e.name.startswith((".", "_")) and e.is_dir()]
    except OSError:
        return []
    return sorted(dirs)


def _header(folder: str, name: str, cache: ParseCache, problems: list[SkillProblem]) -> SkillHeader | None:
    """The validated header of ``folder/SKILL.md``; ``None`` when there is none or it is invalid."""
    path = os.path.join(folder, SKILL_FILE)
    stat = _stat(path)
    if stat is None:
        return None

    def parse() -> tuple[SkillHeader | None, list[SkillProblem]]:
        text, problem = _read(path, name, text=True)
        return (None, [problem]) if problem else parse_skill_md(text, path, name)

    header, found = cache.get("skill", path, stat, parse)
    problems.extend(found)
    return header


def _for_host(header: SkillHeader, app: str) -> bool:
    return not header.dcc or GENERIC in header.dcc or app in header.dcc


# -- phase 2: tools of the winners


def _inside(folder: str, rel: str) -> str | None:
    """``folder/rel`` when ``rel`` is relative and stays inside ``folder`` (no ``..``), else ``None``."""
    parts = rel.replace("\\", "/").split("/")
    if not rel or os.path.isabs(rel) or ".." in parts or ":" in parts[0]:
        return None
    return os.path.join(folder, *parts)


class _SkillLoader:
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
        stat = stat or _stat(path)
        if stat is None:
            return None

        def parse() -> ScriptInfo:
            data, problem = _read(path, self.skill, text=False)
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
        stat = _stat(path)
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
            text, problem = _read(path, self.skill, text=True)
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
            ),
            tools_path,
            key,
        )


def _skill(c: _Candidate) -> Skill:
    """The skill of a candidate; its ``tool_names`` are filled in when its tools are analysed."""
    h = c.header
    return Skill(
        name=h.name,
        description=h.description,
        path=Path(c.path),
        root=c.root,
        metadata=h.metadata,
        dcc=h.dcc,
        license=h.license,
        compatibility=h.compatibility,
        allowed_tools=h.allowed_tools,
        version=h.version,
    )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while discovery builds its tens of thousands of containers.

    Those containers hold no cycles, so reference counting frees them all the same; without the pause, a
    host with a large heap (a DCC scene) pays for several full collections of its whole heap. The previous
    state is restored, as Mercurial's ``util.nogc`` does for the same reason.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def discover_skills(
    app_name: str,
    paths: Sequence[str | os.PathLike[str]] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    interpreter: str | None = None,
    include_user_dir: bool = True,
    cache: bool = True,
    lazy: bool = False,
) -> SkillCatalog:
    """Find the skills for host ``app_name`` and their tools. Never raises on a bad skill.

    Roots, highest priority first: ``paths``; ``DCC_MCP_<APP>_SKILL_PATHS``; ``DCC_MCP_SKILL_PATHS``; the
    user data folder ``mcp-embed/skills/<app>`` (unless ``include_user_dir`` is false). ``env`` replaces
    ``os.environ``; ``interpreter`` runs subprocess tools (default: the running interpreter). ``cache``
    keeps parse results on disk between processes (see ``MCP_EMBED_SKILL_CACHE_DIR``).

    ``lazy`` reads every ``SKILL.md`` and ``tools.yaml`` now but each skill's scripts only when its tools
    are first asked for (see :class:`SkillCatalog`): how a server starts fast with hundreds of skills.
    """
    with _gc_paused():
        catalog = _discover(app_name, paths, env, interpreter, include_user_dir, cache)
        if not lazy:
            catalog.resolve()
        return catalog


def _discover(
    app_name: str,
    paths: Sequence[str | os.PathLike[str]] | None,
    env: Mapping[str, str] | None,
    interpreter: str | None,
    include_user_dir: bool,
    cache: bool,
) -> SkillCatalog:
    app = app_key(app_name)
    environ = os.environ if env is None else env
    roots = skill_roots(app_name, paths, env=environ, include_user_dir=include_user_dir)
    directory = _cache.cache_dir(environ) if cache else None
    parsed = ParseCache(directory, [app, *(str(root) for root, _origin in roots)])
    parsed.load()
    catalog = SkillCatalog()
    winners: dict[str, _Candidate] = {}
    for root, origin in roots:
        if not os.path.isdir(root):
            if origin != "user":
                catalog.problems.append(
                    SkillProblem(
                        "warning",
                        str(root),
                        "root-missing",
                        f"skill root from {origin} does not exist or is not a folder",
                    )
                )
            continue
        catalog.roots.append(root)
        for name, folder in _candidate_dirs(root):
            header = _header(folder, name, parsed, catalog.problems)
            if header is None:
                continue
            candidate = _Candidate(name, folder, root, header)
            if not _for_host(header, app):
                catalog.other_hosts.append(_skill(candidate))
            elif name in winners:
                catalog.shadowed.append(ShadowedSkill(name, Path(folder), Path(winners[name].path)))
            else:
                winners[name] = candidate
    for candidate in winners.values():
        loader = _SkillLoader(candidate.path, candidate.header, interpreter, parsed, catalog.problems)
        decls = loader.declarations()  # an unusable tools.yaml leaves the whole skill out, so read it now
        if decls is None:
            continue
        catalog._add(_skill(candidate), functools.partial(_resolve, loader, decls))
    folders = tuple(os.path.join(c.path, "") for c in winners.values())

    def save() -> None:
        with _gc_paused():
            parsed.save(keep=folders)

    catalog._after = save
    save()
    return catalog


def _resolve(loader: _SkillLoader, decls: list[ToolDecl]) -> list[SkillTool]:
    with _gc_paused():
        return loader.load(decls)


def validate_skill(path: str | os.PathLike[str]) -> list[SkillProblem]:
    """Every problem of one skill folder, warnings included, with every script and schema checked."""
    folder = os.path.abspath(path)
    skill_md = os.path.join(folder, SKILL_FILE)
    problems: list[SkillProblem] = []
    if not os.path.isfile(skill_md):
        return [SkillProblem("error", skill_md, "skill-file", "a skill folder needs a SKILL.md")]
    parsed = ParseCache(None, [])
    header = _header(folder, os.path.basename(folder), parsed, problems)
    if header is None:
        return problems
    loader = _SkillLoader(folder, header, None, parsed, problems, analyze_all=True)
    for tool in loader.load():
        for key in ("input_schema", "output_schema"):
            schema = getattr(tool, key)
            if schema is not None:
                message = _schema_error(schema)
                if message:
                    problems.append(
                        SkillProblem(
                            "error",
                            str(tool.source_file),
                            "tool-schema",
                            f"{tool.name}: {key} is not a valid JSON Schema: {message}",
                            key,
                            None,
                            header.name,
                        )
                    )
    return problems


def _schema_error(schema: dict[str, Any]) -> str | None:
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return str(exc.message)
    return None
