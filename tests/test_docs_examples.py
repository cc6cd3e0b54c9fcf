"""Every ```python block in docs/*.md and README.md runs, so the examples cannot rot.

Each block runs as a script of its own in a fresh interpreter (a child process with a timeout), in
an empty temporary folder, with no DCC_MCP_* variables and log files in that folder. A block that
starts a server must stop it (use ``port=0``), or the child would not exit.

Two HTML comments, invisible on the rendered page, may stand right before a block (blank lines
between are fine):

- ``<!-- docs-test: skip (reason) -->`` skips it, with the reason shown in the test report. Use it
  only for snippets that need a host application (Maya, Houdini, a Qt event loop).
- ``<!-- docs-test: setup ... -->`` runs the code inside the comment first, in the same script:
  the names a fragment takes from the surrounding prose (``server``, a host function).

A block in ``>>>`` form runs its statements; the output shown is not compared (paths differ).
A block that defines ``test_*`` functions runs under pytest, where mcp-embed's fixtures exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*$")
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>.+)\)\s*-->\s*$", re.S)
SETUP = re.compile(r"<!--\s*docs-test:\s*setup\s*\n(?P<code>.*?)-->\s*$", re.S)
MARK = re.compile(r"<!--\s*docs-test:")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    setup: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _comment_before(lines: list[str], fence: int) -> str:
    """The HTML comment that ends right before line ``fence`` (blank lines skipped), or ''."""
    i = fence - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    if i < 0 or not lines[i].rstrip().endswith("-->"):
        return ""
    j = i
    while j >= 0 and "<!--" not in lines[j]:
        j -= 1
    return "\n".join(lines[j : i + 1]).strip() if j >= 0 else ""


def _as_script(code: str) -> str:
    """A ``>>>`` session as plain statements (the expected output lines dropped)."""
    if not code.lstrip().startswith(">>>"):
        return code
    out = [ln[4:] for ln in code.splitlines() if ln.startswith((">>> ", "... ")) or ln in (">>>", "...")]
    return "\n".join(out) + "\n"


def extract(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent = m.group("indent")
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = textwrap.dedent(
            "\n".join(ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : end])
        )
        comment = _comment_before(lines, i)
        skip = setup = None
        if comment and MARK.search(comment):
            if s := SKIP.search(comment):
                skip = s.group("reason").strip()
            elif s := SETUP.search(comment):
                setup = textwrap.dedent(s.group("code"))
            else:
                raise ValueError(f"{path}:{i}: unknown docs-test comment {comment!r}")
        blocks.append(Block(path, i + 1, _as_script(body + "\n"), setup or "", skip))
        i = end + 1
    return blocks


BLOCKS = [b for src in SOURCES for b in extract(src)]


def test_every_page_with_examples_is_collected() -> None:
    assert BLOCKS, "no ```python blocks found"
    assert {b.path.name for b in BLOCKS} >= {"README.md", "skills.md", "testing.md", "quickstart.md"}
    # skips are the exception: a visible reason each, and most blocks run
    assert all(b.skip for b in BLOCKS if b.skip is not None)
    assert sum(b.skip is None for b in BLOCKS) > sum(b.skip is not None for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_python_example_runs(block: Block, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    # A block of pytest tests runs under pytest (mcp-embed's fixtures come from its plugin).
    as_tests = re.search(r"^def test_", block.code, re.M) is not None
    script = tmp_path / ("test_example.py" if as_tests else "example.py")
    script.write_text(block.setup + "\n" + block.code, encoding="utf-8")
    cmd = [sys.executable, str(script)]
    if as_tests:
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(script),
        ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCC_MCP_", "PYTEST_"))}
    env.update(
        MCP_EMBED_LOG_DIR=str(tmp_path / "logs"),
        MCP_EMBED_SKILL_CACHE_DIR=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p),
    )
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.id}: did not finish in 120 s (a server left running?)\n{exc.stderr or ''}")
    output = (run.stdout + run.stderr)[-3000:]
    assert run.returncode == 0, f"{block.id} failed:\n{block.code}\n--- output ---\n{output}"
