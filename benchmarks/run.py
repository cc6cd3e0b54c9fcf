"""Benchmark mcp-embed against the MCP SDK and a raw ASGI echo. Linux only (/proc).

    python benchmarks/run.py [--quick] [--json out.json] [--only NAME ...] [--loader auto|wrk|httpx]

Prints figures and PASS/MISS per target; exits 1 only when a server failed to start or answered wrongly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import load, procfs, report, startup
from harness.measure import Bench, Loader, Plan, cold_starts, finish, load_round, log, start_bench
from harness.servers import SPECS, ServerFailure, ServerSpec, embed_importable

QUICK = Plan(cold_repeats=2, rounds=1, warmup_s=1, c16_s=2, c1_s=2)
FULL = Plan(cold_repeats=5, rounds=3, warmup_s=2, c16_s=10, c1_s=6)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    names = [s.name for s in SPECS]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (~1 min in all), for CI smoke")
    parser.add_argument("--json", type=Path, help="write all results as JSON here")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"servers to run: {names}")
    parser.add_argument("--loader", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: leave a core)")
    return parser.parse_args(argv)


def _revision() -> str:
    """The commit measured, and whether src/ differs from it (the working tree is what runs)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    return f"{head or 'unknown'}{' + uncommitted src/ changes' if dirty else ''}"


def _pick_loader(choice: str, wrk_threads: int) -> tuple[str, Loader]:
    if choice in ("auto", "wrk") and load.wrk_path():
        name = f"wrk ({load.wrk_version()}; {wrk_threads} thread(s); tools_call.lua)"
        return name, functools.partial(load.run_wrk, threads=wrk_threads)
    if choice == "wrk":
        raise SystemExit("wrk is not installed (apt-get install -y wrk), and --loader wrk was asked for")
    why = "asked for" if choice == "httpx" else "wrk not found; apt-get install -y wrk for comparable figures"
    return f"httpx asyncio fallback ({why}); client-bound, so req/s and latency understate fast servers", (
        load.run_httpx
    )


def _startup_figures(quick: bool, embed_error: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    repeats = 2 if quick else 7
    modules = ["mcp", "mcp.server.mcpserver"] + ([] if embed_error else ["mcp_embed"])
    print("import times (fresh interpreters) …", flush=True)
    imports = {m: startup.import_seconds(m, repeats) for m in modules}
    probe: dict[str, Any] = {}
    if not embed_error:
        print("mcp-embed in-process start(wait=False) probe …", flush=True)
        probe = startup.start_probe(2 if quick else 5)
    return imports, probe


def _measure_all(specs: list[ServerSpec], plan: Plan, loader: Loader) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    colds: dict[str, dict[str, Any]] = {}
    for spec in specs:
        print(f"cold start, {spec.name} x{plan.cold_repeats} …", flush=True)
        try:
            colds[spec.name] = cold_starts(spec, plan.cold_repeats)
        except ServerFailure as exc:
            print(f"  FAILED: {exc}", flush=True)
            results[spec.name] = {"status": "failed", "error": str(exc)}
    benches: dict[str, Bench] = {}
    with httpx.Client(timeout=30.0) as client:
        try:
            for spec in specs:
                if spec.name in colds:
                    try:
                        benches[spec.name] = start_bench(spec, client, plan.concurrency)
                    except ServerFailure as exc:
                        print(f"  FAILED: {exc}", flush=True)
                        results[spec.name] = {"status": "failed", "error": str(exc)}
            print(f"all {len(benches)} servers up and verified; echo tools/call verified on each", flush=True)
            for round_no in range(plan.rounds):
                print(f"round {round_no + 1}/{plan.rounds} …", flush=True)
                order = list(benches)
                order = order[round_no % len(order) :] + order[: round_no % len(order)] if order else order
                for name in order:
                    try:
                        load_round(benches[name], plan, loader)
                    except (ServerFailure, RuntimeError) as exc:
                        log(f"FAILED: {exc}")
                        results[name] = {"status": "failed", "error": str(exc)}
                        benches.pop(name).server.stop()
            for name, bench in benches.items():
                try:
                    results[name] = {**finish(bench, client), "cold_start_s": colds[name]}
                except ServerFailure as exc:
                    results[name] = {"status": "failed", "error": str(exc)}
        finally:
            for bench in benches.values():
                bench.server.stop()
    return {s.name: results[s.name] for s in specs if s.name in results}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if not procfs.available():
        raise SystemExit("this benchmark reads /proc for server CPU and RSS: Linux only")
    plan = QUICK if args.quick else FULL
    loader_name, loader = _pick_loader(args.loader, args.wrk_threads)
    specs = [s for s in SPECS if not args.only or s.name in args.only]
    started = time.time()
    revision = _revision()
    print(f"mcp-embed benchmark ({'quick' if args.quick else 'full'}) at {revision}", flush=True)
    print(f"load: {loader_name}", flush=True)

    embed_error = embed_importable()
    skipped: dict[str, dict[str, Any]] = {}
    if embed_error:
        print(f"mcp_embed is not usable here, its servers are skipped: {embed_error}", flush=True)
        skipped = {s.name: {"status": "skipped", "error": embed_error} for s in specs if s.kind == "embed"}
    imports, probe = _startup_figures(args.quick, embed_error)
    measured = _measure_all([s for s in specs if s.name not in skipped], plan, loader)
    results = {s.name: {**skipped, **measured}[s.name] for s in specs}

    failed = bool(probe.get("error")) or any(r["status"] == "failed" for r in results.values())
    failed = failed or bool(skipped and args.only)  # asked for by name, and could not run
    targets = report.targets(results, imports, probe)
    print()
    print(report.render(results, imports, probe, targets, loader_name))
    print(f"\n{time.time() - started:.0f}s in all; exit {1 if failed else 0} (MISS never fails the run)")
    if args.json:
        doc = {
            "meta": {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "mode": "quick" if args.quick else "full",
                "plan": plan.__dict__,
                "loader": loader_name,
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "revision": revision,
                "baseline": "sdk-hypercorn-stateless",
            },
            "servers": results,
            "ratios_vs_baseline": report.ratios(results),
            "imports": imports,
            "start_probe": probe,
            "targets": [t.as_dict() for t in targets],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
