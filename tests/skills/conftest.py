"""Fixtures for the skills tests: fresh caches, and discovery isolated from the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mcp_embed.skills import SkillCatalog, discover_skills
from mcp_embed.skills.discovery import clear_cache
from mcp_embed.skills.execute import clear_module_cache


@pytest.fixture(autouse=True)
def _fresh_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty in-process caches, and a private disk cache instead of the user's."""
    import platformdirs

    cache_home = tmp_path_factory.mktemp("cache-home")
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app: str(cache_home / app))
    monkeypatch.delenv("MCP_EMBED_SKILL_CACHE_DIR", raising=False)
    clear_cache()
    clear_module_cache()


@pytest.fixture
def discover(tmp_path: Path) -> Callable[..., SkillCatalog]:
    """``discover_skills`` isolated from the environment and the user's data folder."""

    def run(*paths: Path | str, app: str = "maya", env: dict[str, str] | None = None) -> SkillCatalog:
        return discover_skills(app, list(paths) or [tmp_path], env=env or {}, include_user_dir=False)

    return run
