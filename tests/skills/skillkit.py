"""Helpers for the skills tests: write skill folders, collect rules."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parents[2] / "examples" / "remote-server" / "skills"


def frontmatter(name: str, description: str = "A test skill.", **extra: str) -> str:
    lines = [f"name: {name}", f"description: {description}"] + [f"{k}: {v}" for k, v in extra.items()]
    return "---\n" + "\n".join(lines) + "\n---\n\n# Instructions\n\nUse it well.\n"


def write_skill(
    root: Path,
    name: str,
    *,
    skill_md: str | None = None,
    dcc: str | None = None,
    scripts: dict[str, str] | None = None,
    tools_yaml: str | None = None,
    files: dict[str, str] | None = None,
) -> Path:
    """Write ``root/name`` with a SKILL.md (valid unless ``skill_md`` is given), scripts and extra files."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if skill_md is None:
        skill_md = frontmatter(name, **({"metadata": f"{{dcc: {dcc}}}"} if dcc else {}))
    (folder / "SKILL.md").write_text(textwrap.dedent(skill_md), encoding="utf-8")
    for rel, source in (scripts or {}).items():
        path = folder / "scripts" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    if tools_yaml is not None:
        (folder / "tools.yaml").write_text(textwrap.dedent(tools_yaml), encoding="utf-8")
    for rel, text in (files or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def rules(problems: Iterable[object]) -> set[str]:
    """The rule names of some problems."""
    return {p.rule for p in problems}  # type: ignore[attr-defined]
