"""Finding skills: roots in priority order, shadowing, host filtering, and validating one skill folder.

Discovery reads each file at most once (and not at all when the parse cache already holds it unchanged),
parses YAML with the C safe loader (a ``SKILL.md`` with the YAML 1.2 core schema), reads scripts with
:mod:`ast`, and never imports or runs them; :mod:`.skilltools` builds the tools of each winning folder.
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
from .roots import app_key, env_var_name, skill_roots
from .skilltools import SKILL_FILE, SkillToolLoader, read_file, stat_file
from .toolsyaml import ToolDecl

__all__ = ["app_key", "discover_skills", "env_var_name", "skill_roots", "validate_skill"]

GENERIC = "generic"


def clear_cache() -> None:
    """Forget every file parsed in this process (the disk cache is read again by the next discovery)."""
    _cache.clear()


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
    stat = stat_file(path)
    if stat is None:
        return None

    def parse() -> tuple[SkillHeader | None, list[SkillProblem]]:
        text, problem = read_file(path, name, text=True)
        return (None, [problem]) if problem else parse_skill_md(text, path, name)

    header, found = cache.get("skill", path, stat, parse)
    problems.extend(found)
    return header


def _for_host(header: SkillHeader, app: str) -> bool:
    return not header.dcc or GENERIC in header.dcc or app in header.dcc


# -- phase 2: the winners become skills; skilltools builds their tools when they are asked for


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
        loader = SkillToolLoader(candidate.path, candidate.header, interpreter, parsed, catalog.problems)
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


def _resolve(loader: SkillToolLoader, decls: list[ToolDecl]) -> list[SkillTool]:
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
    loader = SkillToolLoader(folder, header, None, parsed, problems, analyze_all=True)
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
