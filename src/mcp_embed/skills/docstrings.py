"""Google-style docstrings, as tool inference reads them: the description, and each ``Args:`` entry.

The description is the text before the first section; each parameter's description comes from an
``Args:`` (or ``Arguments:``, ``Parameters:``, ...) section, continuation lines joined.
"""

from __future__ import annotations

import inspect
import re

__all__ = ["parse_docstring"]

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Kwargs|Returns?|Raises|Yields?|"
    r"Examples?|Notes?|Attributes|See Also|Warnings?|Todo|References)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description (text before the first section) and ``Args:`` entries."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    base_indent: int | None = None
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped) if not line.startswith((" ", "\t")) else None
        if header:
            section, current, base_indent = header.group(1).lower(), None, None
            continue
        if section is None:
            summary.append(line)
            continue
        if (
            section
            not in {
                "args",
                "arguments",
                "parameters",
                "params",
                "keyword args",
                "keyword arguments",
                "kwargs",
            }
            or not stripped
        ):
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        match = _ARG_LINE.match(stripped) if indent <= base_indent else None
        if match:
            current = match.group(1)
            args[current] = match.group(2).strip()
        elif current is not None:
            args[current] = f"{args[current]} {stripped}".strip()
    return "\n".join(summary).strip(), args
