"""What the OpenTelemetry hooks cost when nothing is observed: server CPU per ``tools/call``.

Standalone: ``python benchmarks/bench_tracing.py [--calls 3000] [--rounds 7] [--connections 4]
[--quick]``.

The code before the hooks is not available at run time, so two modes are compared in one run:

- ``hooks``: as shipped, with no tracer or meter provider installed (``opentelemetry-api`` only,
  or the SDK installed and not configured): every hook asks one bool and goes on;
- ``bypassed``: the hooks taken out: the fast path's answer as it was before them, and the
  tracing module's entry points (``start``, ``bind``, ``carrier``, ``tool_span``) as no-ops.

Each round starts a fresh server per mode (dedicated, stateless, JSON replies) in this process,
on the fast path and on the SDK path (``fast_path = False``), and drives a fixed number of calls
from a client in another process; this process's CPU time over the load, per call, is the cost.
Modes alternate within a round, and the first mode alternates between rounds, so drift on the
machine hits both alike. Prints the CPU per call of each mode, the median of the per-round
ratios hooks/bypassed, and PASS/MISS against the target (within 3 %). On a shared machine the
per-round ratios scatter by several per cent either way, so it also times the hooks' own work
directly, with no HTTP in the way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TARGET = 1.03

# A bounded loop of calls over keep-alive connections; prints how many were answered right.
CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys
    import httpx
    url, calls, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"text": "hi"}}}).encode()
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25"}
    async def main():
        ok = 0
        left = iter(range(calls))
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conns), timeout=30) as client:
            async def worker():
                nonlocal ok
                for _ in left:
                    r = await client.post(url, content=body, headers=headers)
                    ok += r.status_code == 200 and '"hi"' in r.text
            await asyncio.gather(*(worker() for _ in range(conns)))
        print(ok)
    asyncio.run(main())
    """
)


def _answer_before(
    self: Any, req_id: Any, method: str, params: Any, send: Any, session_id: Any, scope: Any = None
) -> Any:
    """``FastPath._answer`` as it was before the tracing hook."""
    from mcp.shared.exceptions import MCPError

    from mcp_embed.http import fastpath

    async def answer() -> None:
        try:
            if method == "tools/call":
                result = await self.caller.call(
                    params["name"],
                    params.get("arguments"),
                    request_id=req_id,
                    session_id=session_id,
                    scope=scope,
                )
            elif method == "tools/list":
                result = self.list_tools()
            else:
                result = {}
            payload: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "result": result}
        except MCPError as exc:
            payload = {"jsonrpc": "2.0", "id": req_id, "error": exc.error.model_dump(exclude_none=True)}
        await fastpath._send_json(send, payload, session_id)

    return answer()


@contextlib.contextmanager
def bypassed() -> Iterator[None]:
    """The hooks taken out, for the duration."""
    from mcp_embed.http.fastpath import FastPath
    from mcp_embed.ops import tracing

    saved = {n: getattr(tracing, n) for n in ("start", "bind", "carrier", "tool_span")}
    answer = FastPath._answer
    tracing.start = lambda *a, **k: False  # type: ignore[assignment]
    tracing.bind = lambda fn: fn  # type: ignore[assignment]
    tracing.carrier = lambda: None  # type: ignore[assignment]
    tracing.tool_span = lambda *a: contextlib.nullcontext(lambda r: None)  # type: ignore[assignment]
    FastPath._answer = _answer_before  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        FastPath._answer = answer  # type: ignore[method-assign]
        for name, fn in saved.items():
            setattr(tracing, name, fn)


def run_one(mode: str, fast: bool, calls: int, connections: int) -> float:
    """Server CPU seconds per call for one fresh server in ``mode``."""
    from mcp_embed import McpHttpConfig, create_skill_server
    from mcp_embed.ops import tracing

    with bypassed() if mode == "bypassed" else contextlib.nullcontext():
        server = create_skill_server(
            "bench", McpHttpConfig(port=0, stateless=True, json_response=True, enable_file_logging=False)
        )
        server.fast_path = fast

        @server.tool()
        def echo(text: str) -> str:
            """Echo."""
            return text

        handle = server.start()
        try:
            assert not tracing.on(), "a tracer or meter provider is installed: this measures tracing off"
            url = handle.url + "/mcp"
            cpu0 = time.process_time()  # this process is the server: its CPU per call is the cost
            out = subprocess.run(
                [sys.executable, "-c", CLIENT, url, str(calls), str(connections)],
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            cpu = time.process_time() - cpu0
        finally:
            handle.stop()
    answered = int(out.stdout.strip())
    if answered != calls:
        raise SystemExit(f"{mode}: {answered} of {calls} calls answered right")
    return cpu / calls


def hooks_own_cost_us(n: int = 200_000) -> float:
    """What the hooks do per call when off, timed directly (free of HTTP noise): the fast path's
    bool and its extra await, ``bind`` on the main-thread route, ``carrier`` and ``tool_span`` on
    the subprocess route. Microseconds per call, the empty loop subtracted."""
    import asyncio

    from mcp_embed.ops import tracing

    def fn() -> None:
        return None

    async def inner() -> int:
        return 1

    async def hooked(traced: bool) -> int:
        total = 0
        for _ in range(n):
            if traced:
                total += 1
            total += await inner()
            tracing.bind(fn)
            tracing.carrier()
            with tracing.tool_span(None, "echo") as done:
                done(None)
        return total

    async def empty() -> int:
        total = 0
        for _ in range(n):
            total += 1
        return total

    def timed(coro: Any) -> float:
        t0 = time.process_time()
        asyncio.run(coro)
        return time.process_time() - t0

    best = min(timed(hooked(False)) - timed(empty()) for _ in range(5))
    return max(best, 0.0) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="1000 calls, 3 rounds")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 1000, 3
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]  # nothing configured: that is the case measured
    os.environ.setdefault(
        "MCP_EMBED_LOG_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-tracing-logs")
    )
    import opentelemetry  # noqa: F401 - the API the SDK brings: present, as for every user

    report: dict[str, Any] = {"calls": args.calls, "rounds": args.rounds, "paths": {}}
    worst = 0.0
    for fast in (True, False):
        path = "fast path" if fast else "SDK path"
        per: dict[str, list[float]] = {"hooks": [], "bypassed": []}
        ratios = []
        run_one("hooks", fast, min(300, args.calls), args.connections)  # warm-up: imports, caches
        for r in range(args.rounds):
            order = ("hooks", "bypassed") if r % 2 == 0 else ("bypassed", "hooks")
            got = {mode: run_one(mode, fast, args.calls, args.connections) for mode in order}
            for mode, cpu in got.items():
                per[mode].append(cpu)
            ratios.append(got["hooks"] / got["bypassed"])
        ratio = statistics.median(ratios)
        worst = max(worst, ratio)
        hooks_us, off_us = (statistics.median(per[m]) * 1e6 for m in ("hooks", "bypassed"))
        print(
            f"{path:9}  CPU per call: hooks (no provider) {hooks_us:7.1f} us   bypassed {off_us:7.1f} us   "
            f"ratio {ratio:.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)})"
        )
        report["paths"][path] = {
            "hooks_us": hooks_us,
            "bypassed_us": off_us,
            "ratio": ratio,
            "ratios": ratios,
        }
    own = hooks_own_cost_us()
    fast_us = report["paths"]["fast path"]["bypassed_us"]
    report["hooks_own_us"] = own
    print(
        f"the hooks' own cost, timed directly: {own:.2f} us per call = {100 * own / fast_us:.2f} % of the "
        "fast path's CPU per call"
    )
    verdict = "PASS" if worst <= TARGET else "MISS"
    print(f"{verdict}: tracing off costs at most {100 * (worst - 1):+.1f} % CPU per call (target within 3 %)")
    if args.json is not None:
        args.json.write_text(json.dumps({**report, "verdict": verdict}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
