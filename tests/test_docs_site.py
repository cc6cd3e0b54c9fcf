"""The docs site's shape, checked without MkDocs (``nox -s docs`` builds it with --strict)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import yaml

import mcp_embed

ROOT = Path(__file__).resolve().parent.parent


def _nav_files(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [f for item in nav for f in _nav_files(item)]
    if isinstance(nav, dict):
        return [f for value in nav.values() for f in _nav_files(value)]
    return []


def test_the_nav_lists_every_page_and_only_pages_that_exist() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True
    in_nav = _nav_files(config["nav"])
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert sorted(in_nav) == pages
    assert len(in_nav) == len(set(in_nav))


def test_the_api_page_covers_every_public_name() -> None:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    names = hooks.public_names()
    assert set(names) == {n for n in mcp_embed.__all__ if not n.startswith("__")}
    for name, module in names.items():  # each points where the name really lives
        assert getattr(importlib.import_module(f"mcp_embed.{module}"), name) is getattr(mcp_embed, name)
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert hooks.MARKER in api and "::: mcp_embed.testing" in api
