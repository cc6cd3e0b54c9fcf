"""MkDocs hooks.

- The API page lists every name in ``mcp_embed.__all__``, read with ``ast`` (no import).
- A page may link to a repository file outside ``docs/`` (``../tests/conformance/REQUIREMENTS.md``),
  which works on GitHub. On the site it becomes a link to ``repo_url`` when one is set, else the
  path as code. A link whose file does not exist is left alone, so ``--strict`` still fails on it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent
INIT = ROOT / "src" / "mcp_embed" / "__init__.py"
OUTSIDE_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>\.\./[^)#\s]+)(?P<anchor>#[^)\s]*)?\)")
MARKER = "<!-- api: mcp_embed.__all__ -->"


def public_names() -> dict[str, str]:
    """``name -> module`` for each name in ``__all__`` (the module from the lazy-import table)."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: list[str] = []
    lazy: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "__all__":
                names = list(ast.literal_eval(node.value))
            elif node.targets[0].id == "_LAZY":
                lazy = dict(ast.literal_eval(node.value))
    missing = [n for n in names if n not in lazy and not n.startswith("__")]
    if missing:
        raise ValueError(f"names in mcp_embed.__all__ with no module in _LAZY: {missing}")
    return {n: lazy[n] for n in names if not n.startswith("__")}


def _repo_links(markdown: str, page: Any, config: Any) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    page_dir = (docs_dir / page.file.src_path).parent

    def replace(m: re.Match[str]) -> str:
        target = (page_dir / m.group("target")).resolve()
        if not target.is_file() or docs_dir in target.parents or ROOT not in target.parents:
            return m.group(0)
        rel = target.relative_to(ROOT).as_posix()
        repo = (config.get("repo_url") or "").rstrip("/")
        if repo:
            return f"[{m.group('text')}]({repo}/blob/main/{rel}{m.group('anchor') or ''})"
        text = m.group("text")
        return text if text.startswith("`") else f"`{text}`"

    return OUTSIDE_LINK.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = _repo_links(markdown, page, config)
    if MARKER not in markdown:
        return markdown
    by_module: dict[str, list[str]] = {}
    for name, module in public_names().items():
        by_module.setdefault(module, []).append(name)
    parts = []
    for module in sorted(by_module):
        for name in sorted(by_module[module]):
            parts.append(f"::: mcp_embed.{module}.{name}\n    options:\n      heading_level: 3\n")
    return markdown.replace(MARKER, "\n".join(parts))
