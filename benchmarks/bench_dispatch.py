"""Latency the Qt main-thread hop adds to a tool call: ``python benchmarks/bench_dispatch.py``.

A real PySide6 QApplication (offscreen) runs its event loop on this process's main thread, as in
Maya, Houdini or Nuke. A client thread POSTs plain ``tools/call`` requests over one keep-alive
connection (raw httpx JSON, stateless JSON mode), alternating an ``affinity="any"`` tool (a
worker thread) and an ``affinity="main"`` tool (queued for the Qt thread), so both see the same
conditions. The difference of the two is what the hop costs. Goal: at most 2 ms added at p50.

Standalone: needs only mcp-embed, httpx and PySide6-Essentials. ``--json PATH`` writes figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from typing import Any

from harness.stats import percentile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

GOAL_ADDED_P50_MS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="measured calls per tool (default 500)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()

    import httpx
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from mcp_embed import McpHttpConfig, create_skill_server

    app = QApplication(sys.argv[:1])
    server = create_skill_server(
        "bench-dispatch", McpHttpConfig(port=0, stateless=True, json_response=True, dispatcher="qt")
    )
    main_ident = threading.get_ident()
    wrong_thread: list[int] = []

    @server.tool()
    def noop_any(i: int) -> int:
        """Return i, on a worker thread."""
        return i

    @server.tool(affinity="main")
    def noop_main(i: int) -> int:
        """Return i, on the Qt main thread."""
        if threading.get_ident() != main_ident:
            wrong_thread.append(i)
        return i

    handle = server.start()
    timings: dict[str, list[float]] = {"any": [], "main": []}
    failure: list[str] = []
    done = threading.Event()

    def client() -> None:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        try:
            with httpx.Client(timeout=30, headers=headers) as http:
                for n in range(args.warmup + args.calls):
                    for kind, tool in (("any", "noop_any"), ("main", "noop_main")):
                        body = {
                            "jsonrpc": "2.0",
                            "id": n,
                            "method": "tools/call",
                            "params": {"name": tool, "arguments": {"i": n}},
                        }
                        t0 = time.perf_counter()
                        r = http.post(handle.mcp_url(), json=body)
                        dt = time.perf_counter() - t0
                        result = r.json()["result"]
                        if result.get("isError") or result["structuredContent"]["result"] != n:
                            raise RuntimeError(f"{tool} answered {result}")
                        if n >= args.warmup:
                            timings[kind].append(dt * 1000)
        except BaseException as exc:
            failure.append(f"{type(exc).__name__}: {exc}")
        finally:
            done.set()

    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(lambda: app.quit() if done.is_set() else None)
    poll.start()
    threading.Thread(target=client, daemon=True).start()
    app.exec()
    handle.stop()
    if failure:
        print("FAILED:", failure[0], file=sys.stderr)
        return 1
    if wrong_thread:
        print(f"FAILED: {len(wrong_thread)} main calls ran off the Qt thread", file=sys.stderr)
        return 1

    fig: dict[str, Any] = {}
    for kind in ("any", "main"):
        v = timings[kind]
        fig[kind] = {
            "p50_ms": statistics.median(v),
            "p99_ms": percentile(v, 0.99),
            "mean_ms": statistics.fmean(v),
            "calls": len(v),
        }
    added_p50 = fig["main"]["p50_ms"] - fig["any"]["p50_ms"]
    added_p99 = fig["main"]["p99_ms"] - fig["any"]["p99_ms"]
    fig["added_p50_ms"] = added_p50
    fig["added_p99_ms"] = added_p99
    fig["ratio_p50"] = fig["main"]["p50_ms"] / fig["any"]["p50_ms"]
    fig["ratio_p99"] = fig["main"]["p99_ms"] / fig["any"]["p99_ms"]
    fig["goal_added_p50_ms"] = GOAL_ADDED_P50_MS
    fig["pass"] = added_p50 <= GOAL_ADDED_P50_MS
    import PySide6

    fig["env"] = {
        "python": platform.python_version(),
        "pyside6": PySide6.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }

    print(f"tools/call latency, {args.calls} calls each, alternating, one keep-alive connection")
    print(f"{'tool':<26}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for kind, label in (("any", "affinity=any (worker)"), ("main", "affinity=main (Qt hop)")):
        f = fig[kind]
        print(f"{label:<26}{f['p50_ms']:>10.3f}{f['p99_ms']:>10.3f}{f['mean_ms']:>10.3f}")
    print(f"{'added by the Qt hop':<26}{added_p50:>10.3f}{added_p99:>10.3f}")
    print(f"ratio main/any: p50 {fig['ratio_p50']:.2f}x, p99 {fig['ratio_p99']:.2f}x")
    verdict = "PASS" if fig["pass"] else "MISS"
    print(f"{verdict}: added p50 {added_p50:.3f} ms (goal <= {GOAL_ADDED_P50_MS:g} ms)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(fig, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
