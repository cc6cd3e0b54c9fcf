"""Measure the servers: cold starts one by one, then all servers up at once and loaded in rounds.

Loading every server in each round (in a rotating order) spreads any slow spell of a shared machine
over all of them, instead of landing on whichever server happened to run then.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from . import mcp_client, procfs
from .load import LoadResult
from .servers import RunningServer, ServerFailure, ServerSpec, launch

Loader = Callable[[str, int, int, list[str]], LoadResult]


@dataclass(frozen=True)
class Plan:
    cold_repeats: int
    rounds: int
    warmup_s: int
    c16_s: int
    c1_s: int
    concurrency: int = 16


def log(msg: str) -> None:
    print(f"  · {msg}", flush=True)


def cold_starts(spec: ServerSpec, repeats: int) -> dict[str, Any]:
    """Process launch → first successful tools/list (after initialize for stateful servers)."""
    samples: list[float] = []
    for _ in range(repeats):
        with httpx.Client(timeout=30.0) as client:
            server = launch(spec, client)
        samples.append(server.cold_start_s)
        server.stop()
    return {"median": statistics.median(samples), "best": min(samples), "samples": samples}


def _own_cpu() -> float:
    """CPU of this process plus its reaped children (wrk), so it can be told apart from the server's."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Bench:
    """One launched server, its sessions, and its samples."""

    def __init__(self, server: RunningServer, sessions: list[str]) -> None:
        self.server = server
        self.sessions = sessions
        self.rounds: list[dict[str, Any]] = []
        self.rss_idle_bytes = procfs.rss_bytes(server.pid)

    def run(self, loader: Loader, concurrency: int, seconds: int) -> dict[str, Any]:
        """One load run; returns its figures with server CPU per call and the machine's other load."""
        server = self.server
        sessions = self.sessions if concurrency > 1 else self.sessions[:1]
        busy0, own0, cpu0, t0 = (
            procfs.system_busy_seconds(),
            _own_cpu(),
            procfs.cpu_seconds(server.pid),
            time.time(),
        )
        result = loader(server.url, concurrency, seconds, sessions)
        cpu1, own1, busy1, t1 = (
            procfs.cpu_seconds(server.pid),
            _own_cpu(),
            procfs.system_busy_seconds(),
            time.time(),
        )
        server.check_alive()
        name = server.spec.name
        if result.requests == 0:
            raise ServerFailure(f"{name}: no request completed at c={concurrency}: {result.errors}")
        if result.bad_responses or result.errors.get("status"):
            raise ServerFailure(
                f"{name}: wrong answers under load at c={concurrency}: {result.bad_responses} bad bodies, "
                f"{result.errors.get('status')} non-2xx, of {result.requests}"
            )
        server_cpu = cpu1 - cpu0
        other = max(0.0, (busy1 - busy0) - server_cpu - (own1 - own0))
        return {
            **result.as_dict(),
            "server_cpu_s": server_cpu,
            "cpu_per_call_us": server_cpu / result.requests * 1e6,
            "other_load_cores": other / max(t1 - t0, 1e-9),
        }

    def summary(self) -> dict[str, float]:
        def med(run: str, get: Callable[[dict[str, Any]], float]) -> float:
            return float(statistics.median(get(r[run]) for r in self.rounds))

        return {
            "rps": med("c16", lambda r: r["rps"]),
            "cpu_per_call_us": med("c16", lambda r: r["cpu_per_call_us"]),
            "p50_ms": med("c1", lambda r: r["latency_us"]["p50"] / 1000),
            "p99_ms": med("c1", lambda r: r["latency_us"]["p99"] / 1000),
            "cpu_per_call_c1_us": med("c1", lambda r: r["cpu_per_call_us"]),
            "other_load_cores_max": max(
                max(r["c16"]["other_load_cores"], r["c1"]["other_load_cores"]) for r in self.rounds
            ),
        }


def start_bench(spec: ServerSpec, client: httpx.Client, concurrency: int) -> Bench:
    """Launch, open sessions (stateful), and insist on a real echo result on each before any timing."""
    server = launch(spec, client)
    try:
        sessions = (
            [mcp_client.open_session(client, server.url) for _ in range(concurrency)] if spec.stateful else []
        )
        checks: list[str | None] = [*sessions] if sessions else [None]
        for session in checks:
            mcp_client.check_echo(client, server.url, session)
    except mcp_client.ProtocolError as exc:
        tail = server.stderr_tail()
        server.stop()
        raise ServerFailure(f"{spec.name}: {exc}\n--- server stderr (tail) ---\n{tail}") from exc
    except BaseException:
        server.stop()
        raise
    return Bench(server, sessions)


def load_round(bench: Bench, plan: Plan, loader: Loader) -> None:
    loader(bench.server.url, plan.concurrency, plan.warmup_s, bench.sessions)
    c16 = bench.run(loader, plan.concurrency, plan.c16_s)
    c1 = bench.run(loader, 1, plan.c1_s)
    bench.rounds.append({"c16": c16, "c1": c1})
    log(
        f"{bench.server.spec.name}: {c16['rps']:,.0f} req/s at c={plan.concurrency}, "
        f"p50 {c1['latency_us']['p50'] / 1000:.2f} ms at c=1, {c16['cpu_per_call_us']:,.0f} µs CPU/call"
    )


def finish(bench: Bench, client: httpx.Client) -> dict[str, Any]:
    """Memory after the load, a last correctness check, and the result document."""
    server = bench.server
    out: dict[str, Any] = {
        "status": "ok",
        "url": server.url,
        "rss_idle_bytes": bench.rss_idle_bytes,
        "rss_bytes": procfs.rss_bytes(server.pid),
        "peak_rss_bytes": procfs.peak_rss_bytes(server.pid),
        "processes": len(procfs.process_tree(server.pid)),
    }
    try:
        mcp_client.check_echo(client, server.url, bench.sessions[0] if bench.sessions else None)
    except mcp_client.ProtocolError as exc:
        raise ServerFailure(f"{server.spec.name} after the load: {exc}") from exc
    out["summary"] = bench.summary()
    out["rounds"] = bench.rounds
    return out
