"""Where skills are looked for: light enough to ask before anything else of skills is imported.

A host with no skill roots never loads the parsers (``SkillServer`` checks :func:`any_root_exists`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["any_root_exists", "app_key", "env_var_name", "skill_roots"]


def app_key(app_name: str) -> str:
    """The host name as skills spell it in ``dcc`` metadata: lower-case and stripped."""
    return app_name.strip().lower()


def env_var_name(app_name: str) -> str:
    """``DCC_MCP_<APP>_SKILL_PATHS`` with the app upper-cased and every non-alphanumeric as ``_``."""
    return f"DCC_MCP_{re.sub(r'[^A-Z0-9]', '_', app_name.strip().upper())}_SKILL_PATHS"


def _user_skill_dir(app_name: str) -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("mcp-embed")) / "skills" / app_key(app_name)


def skill_roots(
    app_name: str,
    paths: Sequence[str | os.PathLike[str]] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    include_user_dir: bool = True,
) -> list[tuple[Path, str]]:
    """The roots to search, highest priority first, each with where it came from; duplicates dropped."""
    environ = os.environ if env is None else env
    found: list[tuple[Path, str]] = [(Path(p), "explicit") for p in paths or ()]
    for var in (env_var_name(app_name), "DCC_MCP_SKILL_PATHS"):
        for part in environ.get(var, "").split(os.pathsep):
            if part.strip():
                found.append((Path(os.path.expanduser(part.strip())), var))
    if include_user_dir:
        found.append((_user_skill_dir(app_name), "user"))
    seen: set[str] = set()
    roots: list[tuple[Path, str]] = []
    for path, origin in found:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            roots.append((Path(os.path.abspath(path)), origin))
    return roots


def any_root_exists(
    app_name: str,
    paths: Sequence[str | os.PathLike[str]] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    include_user_dir: bool = True,
) -> bool:
    """True when some root exists, so discovery could find a skill (or report a missing path)."""
    if paths:
        return True  # explicit paths are always discovered, so a wrong one is reported
    return any(p.exists() for p, _ in skill_roots(app_name, env=env, include_user_dir=include_user_dir))
