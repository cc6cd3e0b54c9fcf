"""Load generators: wrk with tools_call.lua, or a bounded asyncio httpx loop when wrk is missing."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from . import mcp_client
from .servers import BENCH_DIR

LUA_SCRIPT = BENCH_DIR / "tools_call.lua"
_BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": mcp_client.ECHO_ARGS},
    }
)


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    duration_s: float
    errors: dict[str, int]
    bad_responses: int
    latency_us: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failed(self) -> int:
        return self.bad_responses + sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rps": self.rps}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return ""
    proc = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (
        (proc.stdout + proc.stderr).strip().splitlines()[0] if (proc.stdout + proc.stderr).strip() else "wrk"
    )


def run_wrk(url: str, concurrency: int, duration_s: int, sessions: list[str], threads: int) -> LoadResult:
    """One closed-loop wrk run; `sessions` are round-robined as Mcp-Session-Id (empty for stateless)."""
    path = wrk_path()
    if path is None:
        raise RuntimeError("wrk not found")
    threads = max(1, min(threads, concurrency))
    argv = [
        path,
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{duration_s}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    if sessions:
        argv += ["--", *sessions]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    data = json.loads(line[len("WRK_JSON ") :])
    return LoadResult(
        concurrency=concurrency,
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        errors={k: int(v) for k, v in data["errors"].items()},
        bad_responses=int(data["bad_bodies"]),
        latency_us={k: float(v) for k, v in data["latency_us"].items()},
    )


async def _httpx_load(
    url: str, concurrency: int, duration_s: float, sessions: list[str], max_requests: int
) -> LoadResult:
    latencies: list[float] = []
    bad = 0
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    deadline = time.perf_counter() + duration_s
    counter = 0

    async def worker(client: httpx.AsyncClient, worker_no: int) -> None:
        nonlocal bad, counter
        headers = dict(mcp_client.HEADERS)
        if sessions:
            headers["Mcp-Session-Id"] = sessions[worker_no % len(sessions)]
        while time.perf_counter() < deadline and counter < max_requests:
            counter += 1
            body = _BODY.replace('"id": 1', f'"id": {counter}')
            start = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.TimeoutException:
                errors["timeout"] += 1
                continue
            except httpx.TransportError:
                errors["read"] += 1
                continue
            latencies.append((time.perf_counter() - start) * 1e6)
            if response.status_code != 200:
                errors["status"] += 1
            elif '"hi"' not in response.text or '"isError":true' in response.text.replace(" ", ""):
                bad += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        started = time.perf_counter()
        async with asyncio.timeout(duration_s + 30):
            await asyncio.gather(*(worker(client, i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    latency: dict[str, float] = {}
    if latencies:
        q = statistics.quantiles(latencies, n=1000, method="inclusive")
        latency = {
            "min": min(latencies),
            "mean": statistics.fmean(latencies),
            "max": max(latencies),
            "p50": q[499],
            "p90": q[899],
            "p99": q[989],
            "p999": q[998],
        }
    return LoadResult(concurrency, len(latencies), elapsed, errors, bad, latency)


def run_httpx(
    url: str, concurrency: int, duration_s: float, sessions: list[str], max_requests: int = 500_000
) -> LoadResult:
    """The fallback: client-bound (Python), so only its server-side CPU figures compare with wrk's."""
    return asyncio.run(_httpx_load(url, concurrency, duration_s, sessions, max_requests))
