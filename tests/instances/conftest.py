"""The instance registry tests' fixtures: a real redis-server per test (``redis_helpers``), and a
``registry`` run against each implementation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_embed.instances import FileRegistry, Registry
from redis_helpers import guarded_redis, redis_server

__all__ = ["guarded_redis", "redis_server"]


@pytest.fixture(params=["files", "redis"])
def make_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """``make_registry(ttl)``: a new registry of the kind under test; all of one test share one store."""
    made: list[Registry] = []

    def make(ttl: float = 15.0) -> Registry:
        if request.param == "files":
            registry: Registry = FileRegistry(tmp_path / "instances", ttl)
        else:
            from mcp_embed.instances import RedisRegistry

            registry = RedisRegistry(request.getfixturevalue("redis_server").url, ttl)
        made.append(registry)
        return registry

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for registry in made:
        registry.close()
