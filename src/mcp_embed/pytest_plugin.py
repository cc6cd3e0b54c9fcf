"""pytest fixtures for tool authors, registered through the ``pytest11`` entry point.

This module is loaded in every pytest session of every project that installs mcp-embed, so it
imports nothing from mcp-embed (or the MCP SDK) until a test asks for one of its fixtures.

- ``mcp_skills(*paths, app="generic", **kw)`` serves skill folders (or roots) and returns a
  connected :class:`mcp_embed.testing.McpTestClient`.
- ``mcp_server(server, **kw)`` serves a :class:`mcp_embed.SkillServer` you built.
- ``mcp_connect(url, **kw)`` connects to an MCP server that is already running.

Everything a fixture started is stopped when the test ends. See :mod:`mcp_embed.testing`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mcp_embed.testing import McpTestClient

__all__ = ["mcp_connect", "mcp_server", "mcp_skills"]


def _resolve(path: str | os.PathLike[str], test_dir: Path) -> str:
    """A relative path as given when it exists from the working folder, else next to the test file."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return os.fspath(p)
    beside = test_dir / p
    return os.fspath(beside if beside.exists() else p)


@pytest.fixture
def mcp_skills(request: pytest.FixtureRequest) -> Iterator[Callable[..., McpTestClient]]:
    """Serve skills for this test: ``mcp_skills("skills/greet").call("greet__greet", name="Ada")``.

    Arguments are those of :func:`mcp_embed.testing.serve_skills` (``app``, ``config``,
    ``isolated``, ``interpreter``). A relative path is read from the working folder, or, if it is not
    there, from the test file's folder.
    """
    from mcp_embed.testing import serve_skills

    test_dir = Path(str(request.path)).parent
    with contextlib.ExitStack() as stack:

        def start(*paths: str | os.PathLike[str], **kwargs: Any) -> McpTestClient:
            resolved = [_resolve(p, test_dir) for p in paths]
            return stack.enter_context(serve_skills(*resolved, **kwargs))

        yield start


@pytest.fixture
def mcp_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., McpTestClient]]:
    """Serve a server object for this test: ``mcp_server(server).call("add", a=1, b=2)``.

    Arguments are those of :func:`mcp_embed.testing.serve` (``isolated``, ``mode``).
    """
    from mcp_embed.testing import serve

    with contextlib.ExitStack() as stack:

        def start(server: Any, **kwargs: Any) -> McpTestClient:
            return stack.enter_context(serve(server, **kwargs))

        yield start


@pytest.fixture
def mcp_connect(request: pytest.FixtureRequest) -> Iterator[Callable[..., McpTestClient]]:
    """Connect to a running server for this test: ``mcp_connect("http://127.0.0.1:8765/mcp")``.

    Arguments are those of :func:`mcp_embed.testing.connect` (``mode``, ``headers``).
    """
    from mcp_embed.testing import connect

    with contextlib.ExitStack() as stack:

        def start(url: str, **kwargs: Any) -> McpTestClient:
            return stack.enter_context(connect(url, **kwargs))

        yield start
