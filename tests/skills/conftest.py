"""Fixtures for the skills tests: fresh caches, and discovery isolated from the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mcp_embed.skills import SkillCatalog, discover_skills
from mcp_embed.skills.discovery import clear_cache
from mcp_embed.skills.execute import clear_module_cache


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    clear_cache()
    clear_module_cache()


@pytest.fixture
def discover(tmp_path: Path) -> Callable[..., SkillCatalog]:
    """``discover_skills`` isolated from the environment and the user's data folder."""

    def run(*paths: Path | str, app: str = "maya", env: dict[str, str] | None = None) -> SkillCatalog:
        return discover_skills(app, list(paths) or [tmp_path], env=env or {}, include_user_dir=False)

    return run
