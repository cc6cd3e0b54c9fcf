"""Skill discovery speed: 1,000 skills and 5,000 tools, against a plain read of the same files.

    python benchmarks/bench_skills.py [--skills 1000] [--functions 5] [--repeat 7]

Prints, in milliseconds (best of ``--repeat``):

- baseline: an ``os.scandir`` walk that reads every SKILL.md and script of the skills, and nothing more;
  and the same walk reading only the SKILL.md files, which is all a lazy discovery reads;
- discovery, no cache: what a server does at start (``lazy=True``): every SKILL.md (and tools.yaml)
  parsed and validated, no script read;
- server start, no cache: ``reload_skills()`` on a server, that discovery plus analysing just enough
  skills to know the tools exceed ``skills_list_limit``, registering them and every skill's resources;
- start() to ready, no cache, in each spawn mode: the whole ``server.start()`` of a real server,
  port bound and answering; subprocess mode adds the child process, its imports and the catalogue
  the host sends it (the tools analysed so far, never the hidden skills);
- full analysis, no cache: every script parsed with ``ast`` as well (``skills list``, a server whose
  skills fit under the limit, or the first ``search_tools`` pays this once; the cache keeps it);
- full analysis, disk cache: a new process (empty memory) with the parse cache a previous run left;
- reload: a full discovery again in the same process, nothing changed;
- tools/list: the 5,000 SkillTools as the plain dicts ``tools/list`` would send, and what the server's
  ``tools/list`` holds above the limit (meta-tools only).

Targets (judged on the discovery row, the one discovery a server does): <= 300 ms and <= 3x the
all-files baseline; tools/list of 5,000 tools <= 50 ms. The other rows are there to be read, with
their ratios; every ratio is from this one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.skills import SkillCatalog, discover_skills
from mcp_embed.skills.discovery import clear_cache
from mcp_embed.skills.serve import SkillLoader

TARGET_MS = 300.0
TARGET_RATIO = 3.0

FUNCTION = '''

def {name}(target: str, count: int = 1, scale: float = 1.0, mode: Literal["fast", "safe"] = "safe",
           tags: list[str] | None = None) -> dict:
    """Do operation {index} of skill {skill} on the target.

    Args:
        target: The node to act on.
        count: How many times.
        scale: A multiplier.
        mode: Speed or safety.
        tags: Labels to attach.
    """
    result = {{"target": target, "count": count}}
    for i in range(count):
        result[f"step{{i}}"] = i * scale
    return result
'''


def generate(root: Path, skills: int, functions: int) -> None:
    """Write ``skills`` skill folders, each with a SKILL.md and one script of ``functions`` functions."""
    for s in range(skills):
        name = f"skill-{s:04d}"
        folder = root / name / "scripts"
        folder.mkdir(parents=True)
        (root / name / "SKILL.md").write_text(
            f"---\nname: {name}\ndescription: Benchmark skill {s}. Use it when measuring discovery.\n"
            f'license: MIT\nmetadata:\n  dcc: generic\n  version: "1.0.{s}"\n---\n\n# {name}\n\n'
            + "Instructions for the agent. " * 20
            + "\n",
            encoding="utf-8",
        )
        body = "".join(FUNCTION.format(name=f"op_{f}", index=f, skill=s) for f in range(functions))
        (folder / "ops.py").write_text(
            f'"""Operations of {name}."""\n\nfrom typing import Literal\n' + body, encoding="utf-8"
        )


def baseline(root: Path, scripts: bool = True) -> int:
    """Walk the roots with os.scandir and read every SKILL.md (and script): the floor for discovery."""
    total = 0
    with os.scandir(root) as skills:
        for skill in skills:
            if not skill.is_dir():
                continue
            with open(os.path.join(skill.path, "SKILL.md"), "rb") as fh:
                total += len(fh.read())
            if not scripts:
                continue
            with os.scandir(os.path.join(skill.path, "scripts")) as scripts_dir:
                for script in scripts_dir:
                    if script.name.endswith(".py"):
                        with open(script.path, "rb") as fh:
                            total += len(fh.read())
    return total


def best_ms(fn: Callable[[], object], repeat: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skills", type=int, default=1000)
    parser.add_argument("--functions", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mcp-embed-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.skills, args.functions)

        env = {"MCP_EMBED_SKILL_CACHE_DIR": str(root.parent / f"{root.name}-cache")}
        no_cache = {"MCP_EMBED_SKILL_CACHE_DIR": ""}

        def discover(cache: bool = True, lazy: bool = False) -> SkillCatalog:
            return discover_skills(
                "maya", [root], env=env if cache else no_cache, include_user_dir=False, lazy=lazy
            )

        config = McpHttpConfig(port=0)  # skills_list_limit at its default

        def server_start() -> SkillLoader:
            server = create_skill_server("maya", config, skill_paths=[root])
            loader = server._skill_loader(env=no_cache, include_user_dir=False)
            loader.load()
            return loader

        def started(spawn_mode: str) -> Callable[[], object]:
            def run() -> object:
                cfg = McpHttpConfig(port=0, spawn_mode=spawn_mode, enable_file_logging=False)
                server = create_skill_server("maya", cfg, skill_paths=[root])
                server._skill_loader(env=no_cache, include_user_dir=False).load()  # what start() does first
                handle = server.start()
                assert server.skills is not None and len(server.skills.pending) > args.skills // 2
                handle.stop()
                return handle

            return run

        discover()  # imports (yaml, platformdirs) and OS caches out of the way, for both sides alike
        baseline(root)
        catalog = discover()
        assert len(catalog.skills) == args.skills and not catalog.errors, catalog.errors[:3]
        tools = catalog.tools
        expected_tools = args.skills * args.functions
        assert len(tools) == expected_tools, len(tools)
        lazy = discover(cache=False, lazy=True)
        assert len(lazy.skills) == args.skills and len(lazy.pending) == args.skills
        loader = server_start()
        listed = loader.components.tools.listed()
        assert {t.name for t in listed} == {"search_tools", "describe_tool", "activate_skill"}, len(listed)
        assert loader.catalog is not None and len(loader.catalog.pending) > args.skills // 2

        base = best_ms(lambda: baseline(root), args.repeat)
        base_md = best_ms(lambda: baseline(root, scripts=False), args.repeat)
        lazy_ms = best_ms(lambda: discover(cache=False, lazy=True), args.repeat, before=clear_cache)
        server_ms = best_ms(server_start, args.repeat, before=clear_cache)
        runs = max(1, min(args.repeat, 3))  # each spawns a server (and a child process)
        started("subprocess")()  # the child's imports into the OS cache, as for the other rows
        dedicated_ms = best_ms(started("dedicated"), runs, before=clear_cache)
        subprocess_ms = best_ms(started("subprocess"), runs, before=clear_cache)
        first = best_ms(lambda: discover(cache=False), args.repeat, before=clear_cache)
        start = best_ms(discover, args.repeat, before=clear_cache)
        reload = best_ms(discover, args.repeat)
        listing = best_ms(lambda: [t.to_dict() for t in tools], args.repeat)
        meta_listing = best_ms(lambda: [s.wire() for s in loader.components.tools.listed()], args.repeat)
        shutil.rmtree(env["MCP_EMBED_SKILL_CACHE_DIR"], ignore_errors=True)

    def verdict(ms: float) -> str:
        ok = ms <= TARGET_MS and ms / base <= TARGET_RATIO
        return "meets" if ok else "MISSES"

    print(f"{args.skills} skills, {expected_tools} tools, best of {args.repeat}")
    print(f"{'baseline: scandir + read all files':<36} {base:8.1f} ms")
    print(f"{'baseline: scandir + read SKILL.md':<36} {base_md:8.1f} ms")
    rows = (
        ("discovery, no cache (server, lazy)", lazy_ms, True),
        ("server start, no cache", server_ms, False),
        ("start() to ready, dedicated", dedicated_ms, False),
        ("start() to ready, subprocess", subprocess_ms, False),
        ("full analysis, no cache", first, False),
        ("full analysis, disk cache", start, False),
        ("reload (same process)", reload, False),
    )
    for label, ms, target in rows:
        ratios = f"{ms / base:5.1f}x baseline  {ms / base_md:5.1f}x SKILL.md-only"
        judged = f"  {verdict(ms)} <= {TARGET_MS:.0f} ms and <= {TARGET_RATIO:.0f}x" if target else ""
        print(f"{label:<36} {ms:8.1f} ms  {ratios}{judged}")
    print(f"{f'tools/list dicts, {expected_tools} tools':<36} {listing:8.1f} ms  (target <= 50 ms)")
    print(f"{f'tools/list above the limit, {len(listed)} tools':<36} {meta_listing:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
