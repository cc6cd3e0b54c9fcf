"""What the audit log costs: tools/call throughput with the audit log off, on, and on with metrics.

Standalone: ``python benchmarks/bench_audit.py [--seconds 3] [--rounds 7] [--connections 32] [--quick]
[--poisoned 2000] [--poisoned-only]``.
The server runs in this process (its own thread, as embedded); the load comes from ``wrk`` in
another process (or, without wrk, a bounded httpx loop in a child Python). Modes are interleaved
round by round so drift on the machine hits every mode alike.
Prints requests/s and server CPU per call per mode, the median of the per-round ratios on/off
(goal: at most 10 % cost), the audit's own cost per record measured directly, and checks that the
audit log holds a record for every answered call.

Then, in both spawn modes, a poisoned load: ``--poisoned`` calls (default 2000) at concurrency 8,
one in 50 a call whose record holds a lone surrogate (the tool's error text names a file
``bad \\udcff name``, as an ``OSError`` for an undecodable file name does), and checks
"N calls -> N records": one odd record must never cost another its place. (A lone surrogate in
the request body itself is refused before any tool runs: a parse error, not a call.)
``--poisoned-only`` runs just that check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}},
    }
)

LUA = (
    textwrap.dedent(
        """
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Accept"] = "application/json, text/event-stream"
    wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
    wrk.body = [[%s]]
    ok = 0
    function response(status, headers, body)
      if status == 200 then ok = ok + 1 end
    end
    function done(summary, latency, requests)
      io.write(string.format("WRK_JSON {\\"requests\\":%%d,\\"errors\\":%%d,\\"p50\\":%%d,\\"p99\\":%%d}\\n",
        summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
    end
    """
    )
    % BODY
)

HTTPX_LOAD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import httpx
    url, seconds, conns, body = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25"}
    async def main():
        done = errors = 0
        end = time.monotonic() + seconds
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conns)) as client:
            async def worker():
                nonlocal done, errors
                while time.monotonic() < end:
                    r = await client.post(url, content=body, headers=headers)
                    done += 1
                    errors += r.status_code != 200
            await asyncio.gather(*(worker() for _ in range(conns)))
        print("WRK_JSON " + json.dumps({"requests": done, "errors": errors, "p50": 0, "p99": 0}))
    asyncio.run(main())
    """
)


def load(url: str, seconds: float, connections: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(LUA)
        try:
            out = subprocess.run(
                [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", f.name, url],
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                check=True,
            ).stdout
        finally:
            os.unlink(f.name)
    else:
        out = subprocess.run(
            [sys.executable, "-c", HTTPX_LOAD, url, str(seconds), str(connections), BODY],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK_JSON "))
    result: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
    result["rps"] = result["requests"] / seconds
    return result


MODES: dict[str, dict[str, Any]] = {
    "audit off": {"enable_file_logging": False},
    "audit on": {"enable_file_logging": True},
    "audit on + metrics": {"enable_file_logging": True, "enable_metrics": True},
}


def run_round(mode: str, log_root: Path, seconds: float, connections: int, n: int) -> dict[str, Any]:
    from mcp_embed import McpHttpConfig, create_skill_server

    log_dir = log_root / f"{mode.replace(' ', '_').replace('+', 'p')}-{n}"
    cfg = McpHttpConfig(port=0, stateless=True, json_response=True, log_dir=str(log_dir), **MODES[mode])
    server = create_skill_server("bench", cfg)

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    with server.start() as handle:
        load(handle.mcp_url(), 1.0, connections)  # warm up
        cpu0 = time.process_time()  # this process is the server: its CPU per call is the cost
        result = load(handle.mcp_url(), seconds, connections)
        cpu = time.process_time() - cpu0
    result["cpu_us_per_call"] = cpu / max(1, result["requests"]) * 1e6
    records = 0
    audit = log_dir / "audit.jsonl"
    if audit.exists():
        for p in [*log_dir.glob("audit.jsonl.*"), audit]:
            records += sum(1 for _ in p.open("rb"))
    result["audit_records"] = records
    return result


def audit_cost_per_record(log_root: Path, n: int = 20_000) -> tuple[float, float]:
    """CPU microseconds per audited call: (on the request path, in total with the writer thread).

    A direct measure, free of the HTTP noise: ``Operations.tool_call`` as ToolCaller.call makes
    it, then a flush.
    """
    from mcp_embed import McpHttpConfig
    from mcp_embed.ops.audit import Operations

    ops = Operations(McpHttpConfig(), log_dir=log_root / "direct")
    assert ops.audit is not None
    scope = {"client": ("127.0.0.1", 50000), "headers": [], "path": "/mcp"}
    t0 = time.thread_time()
    c0 = time.process_time()
    for i in range(n):
        ops.tool_call(
            tool="echo",
            status="ok",
            started=time.perf_counter(),
            request_id=i,
            session_id="0123456789abcdef0123456789abcdef",
            scope=scope,
            client=("bench", "1.0"),
            arguments={"text": f"hi {i}"},
        )
    path = (time.thread_time() - t0) / n * 1e6
    ops.audit.flush(60)
    total = (time.process_time() - c0) / n * 1e6
    ops.close()
    return path, total


CALL_BODY = '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":{%s}}}'


def poisoned_round(spawn_mode: str, log_root: Path, n: int, concurrency: int = 8, every: int = 50) -> int:
    """Serve ``n`` calls, every ``every``-th poisoned; print N calls -> N records. 0 when they match."""
    import asyncio

    import httpx

    from mcp_embed import McpHttpConfig, create_skill_server

    log_dir = log_root / f"poisoned-{spawn_mode}"
    cfg = McpHttpConfig(port=0, json_response=True, spawn_mode=spawn_mode, log_dir=str(log_dir))
    server = create_skill_server("bench", cfg)

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    def open_file(i: int) -> str:
        """Fail the way a file name that is not valid UTF-8 does: its text holds a lone surrogate."""
        raise OSError(f"cannot open bad \udcff name {i}")

    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    init = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "b", "version": "1"},
            },
        }
    )
    answered = 0

    async def load(url: str) -> None:
        nonlocal answered
        async with httpx.AsyncClient(timeout=60) as client:

            async def worker(k: int) -> None:
                nonlocal answered
                r = await client.post(url, content=init, headers=headers)
                session = {**headers, "mcp-session-id": r.headers["mcp-session-id"]}
                for i in range(k, n, concurrency):
                    if i % every == every - 1:
                        body = CALL_BODY % (i, "open_file", f'"i":{i}')
                    else:
                        body = CALL_BODY % (i, "echo", f'"text":"good {i}"')
                    r = await client.post(url, content=body, headers=session)
                    answered += r.status_code == 200

            await asyncio.gather(*(worker(k) for k in range(concurrency)))

    with server.start() as handle:
        asyncio.run(load(handle.mcp_url()))
    # Lost records are reported as ERROR lines of the app log, in either spawn mode.
    app_log = (log_dir / "mcp-embed.log").read_text("utf-8", "replace")
    lost = sum(1 for line in app_log.splitlines() if "audit record(s) lost" in line)
    calls = sessions = 0
    for p in [*log_dir.glob("audit.jsonl.*"), log_dir / "audit.jsonl"]:
        for line in p.read_bytes().decode("utf-8").splitlines():
            event = json.loads(line)["event"]
            calls += event == "tool_call"
            sessions += event == "session_close"
    poisoned = n // every
    ok = calls == n and sessions == concurrency and lost == 0
    print(
        f"poisoned load ({spawn_mode}): {n} calls ({poisoned} poisoned, {answered} answered 200) -> "
        f"{calls} records, {sessions}/{concurrency} sessions closed, {lost} loss reports in the app log: "
        + ("PASS" if ok else "FAIL")
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="load per round (default 3)")
    ap.add_argument("--rounds", type=int, default=7, help="rounds per mode, interleaved (default 7)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="2 s x 3 rounds")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--poisoned", type=int, default=2000, help="calls of the poisoned load (default 2000)")
    ap.add_argument("--poisoned-only", action="store_true", help="only the poisoned load, both spawn modes")
    args = ap.parse_args(argv)
    if args.poisoned_only:
        with tempfile.TemporaryDirectory(prefix="mcp-embed-bench-audit-") as tmp:
            return max(poisoned_round(mode, Path(tmp), args.poisoned) for mode in ("dedicated", "subprocess"))
    if args.quick:
        args.seconds, args.rounds = 2.0, 3
    modes = list(MODES)
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        modes.remove("audit on + metrics")
    rps: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="mcp-embed-bench-audit-") as tmp:
        for n in range(args.rounds):
            for mode in modes:
                r = run_round(mode, Path(tmp), args.seconds, args.connections, n)
                rps[mode].append(r["rps"])
                cpu[mode].append(r["cpu_us_per_call"])
                answered = r["requests"] - r["errors"]
                check = ""
                if MODES[mode]["enable_file_logging"]:
                    # warm-up requests are audited too: at least every answered call has a record
                    check = f"  audit records {r['audit_records']} (>= {answered} answered)"
                    if r["audit_records"] < answered:
                        print(f"FAIL: {mode}: fewer audit records than answered calls", file=sys.stderr)
                        return 1
                print(
                    f"round {n + 1} {mode:<20} {r['rps']:9.0f} req/s  "
                    f"{r['cpu_us_per_call']:7.1f} us CPU/call  errors {r['errors']}{check}"
                )
        path_us, total_us = audit_cost_per_record(Path(tmp))
        if any(poisoned_round(mode, Path(tmp), args.poisoned) for mode in ("dedicated", "subprocess")):
            return 1
    med = {m: statistics.median(v) for m, v in rps.items()}
    med_cpu = {m: statistics.median(v) for m, v in cpu.items()}
    print()
    for m in modes:
        print(f"{m:<20} median {med[m]:9.0f} req/s  {med_cpu[m]:7.1f} us CPU/call")
    # Each round runs off and on back to back: the median of the per-round ratios cancels most of
    # the drift of a shared machine, which a ratio of medians does not.
    ratio = statistics.median(on / off for on, off in zip(rps["audit on"], rps["audit off"], strict=True))
    cost = (1 - ratio) * 100
    cpu_ratio = statistics.median(on / off for on, off in zip(cpu["audit on"], cpu["audit off"], strict=True))
    verdict = "PASS" if cost <= 10 else "MISS"
    print(f"\nthroughput audit on / audit off = {ratio:.3f}  (cost {cost:+.1f} %, goal <= 10 %): {verdict}")
    print(
        f"server CPU per call, audit on / audit off = {cpu_ratio:.3f}  (cost {(cpu_ratio - 1) * 100:+.1f} %)"
    )
    print(
        f"audit CPU per call, measured directly: {path_us:.1f} us on the request path, "
        f"{total_us:.1f} us with the writer thread ({total_us / med_cpu['audit off'] * 100:.1f} % of a call)"
    )
    if "audit on + metrics" in med:
        r2 = statistics.median(
            a / b for a, b in zip(rps["audit on + metrics"], rps["audit off"], strict=True)
        )
        c2 = statistics.median(
            a / b for a, b in zip(cpu["audit on + metrics"], cpu["audit off"], strict=True)
        )
        print(f"audit on + metrics / audit off: throughput {r2:.3f}, CPU per call {c2:.3f}")
    if args.json:
        figures = {
            "median_rps": med,
            "median_cpu_us_per_call": med_cpu,
            "ratio": ratio,
            "cpu_ratio": cpu_ratio,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
