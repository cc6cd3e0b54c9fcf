"""Plain-text reports for the CLI: ``mcp-embed skills list`` and ``mcp-embed skills validate``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._model import SkillCatalog, SkillProblem

__all__ = ["format_problems", "format_skills_table"]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def format_problems(problems: Iterable[SkillProblem]) -> str:
    """One problem per line, errors first, as ``path:line: severity [key]: message (rule)``."""
    ordered = sorted(problems, key=lambda p: (p.severity != "error", p.path, p.line or 0))
    return "\n".join(str(p) for p in ordered)


def format_skills_table(catalog: SkillCatalog) -> str:
    """The skills of a catalog as a table, then shadowed copies, other hosts' skills and problems."""
    rows = [
        (s.name, str(len(s.tool_names)), ",".join(s.dcc) or "any", s.version or "-", str(s.path))
        for s in catalog.skills
    ]
    lines = _table(("SKILL", "TOOLS", "DCC", "VERSION", "PATH"), rows) if rows else ["no skills found"]
    lines.append(f"{len(catalog.skills)} skills, {len(catalog.tools)} tools")
    if catalog.shadowed:
        lines += ["", "shadowed (a root of higher priority has a skill of the same name):"]
        lines += [f"  {s.name}: {s.path} (shadowed by {s.shadowed_by})" for s in catalog.shadowed]
    if catalog.other_hosts:
        hosts = sorted({d for s in catalog.other_hosts for d in s.dcc})
        lines += ["", f"for other hosts (left out; --app {hosts[0]} serves the {hosts[0]} ones):"]
        lines += [f"  {s.name} [{','.join(s.dcc)}]: {s.path}" for s in catalog.other_hosts]
    if catalog.problems:
        errors = sum(p.severity == "error" for p in catalog.problems)
        lines += ["", f"problems ({errors} errors, {len(catalog.problems) - errors} warnings):"]
        lines += [f"  {line}" for line in format_problems(catalog.problems).splitlines()]
    return "\n".join(lines)
