"""What the Redis event store costs a streamed tool call: CPU per call and latency, Redis vs memory.

Standalone: ``python benchmarks/bench_redis_events.py [--calls 1000] [--rounds 6] [--steps 5]``
(needs ``redis-server`` and ``pip install "mcp-embed[redis]"``).
It starts a real redis-server on 127.0.0.1 in a temporary folder (nothing saved), and two servers,
each in a child process of its own, identical but for ``McpHttpConfig.redis_url``: one keeps its
event store, tasks and sessions in memory, the other in that Redis. Each serves one tool that calls
``ctx.report_progress`` ``--steps`` times. A client in another child process opens a session on
each server and sends sequential ``tools/call`` (concurrency 1) with a ``progressToken`` and
``Accept: application/json, text/event-stream``: the SDK path, whose answer streams as SSE, every
event (the progress notes and the result) written to the event store first. Every reply is checked:
``--steps`` progress events and the result, each with an SSE event id (so it went through the
store). After a warm-up the two servers are measured in alternating rounds (ABBA order) so drift on
the machine hits both alike.

Prints, per server: CPU per call of the server process (``time.process_time()``, all its threads,
read by the server itself before and after each round: portable), p50/p90/p99 latency per call,
and for the Redis run redis-server's own CPU per call (``INFO cpu``) apart; then the ratios
Redis/memory and a verdict against the target (issue 16: at most 1.5x CPU per call, +1 ms at p50).
The exit status is 0 when the target is missed (a report, not a gate), 1 when a server failed to
start or answered wrongly, 2 when redis-server is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

TARGET_CPU_RATIO = 1.5
TARGET_ADDED_P50_MS = 1.0
GUARD_S = 120.0  # a hang guard on every answer from a child process, never a timing assertion

SERVER = textwrap.dedent(
    """
    import sys, time
    from mcp_embed import McpHttpConfig, ToolContext, create_skill_server

    redis_url = sys.argv[1] or None
    # register=False on both: the instance listing (a file, or a Redis key with redis_url) is not
    # what this measures
    cfg = McpHttpConfig(
        port=0, enable_file_logging=False, register=False, server_name="bench-events", redis_url=redis_url
    )
    server = create_skill_server("bench", cfg)

    @server.tool()
    def steps(n: int, ctx: ToolContext) -> str:
        \"\"\"Report n progress steps, then answer.\"\"\"
        for i in range(n):
            ctx.report_progress(i + 1, n, "step")
        return f"{n} steps"

    handle = server.start()
    try:
        print("URL", handle.mcp_url(), flush=True)
        for line in sys.stdin:  # "cpu": this process's CPU seconds so far (all threads); EOF: stop
            print("CPU", time.process_time(), flush=True)
    finally:
        handle.stop()
    """
)

CLIENT = textwrap.dedent(
    """
    import json, sys, time
    import httpx

    url, steps = sys.argv[1], int(sys.argv[2])
    accept = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "bench-redis-events", "version": "0"}}}
    with httpx.Client(timeout=10.0) as c:
        r = c.post(url, json=init, headers=accept)
        assert r.status_code == 200, r.text
        headers = {**accept, "Mcp-Session-Id": r.headers["mcp-session-id"],
                   "Mcp-Protocol-Version": "2025-11-25"}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert c.post(url, json=note, headers=headers).status_code == 202
        rid = 0

        def call():
            global rid
            rid += 1
            body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {
                "name": "steps", "arguments": {"n": steps}, "_meta": {"progressToken": rid}}})
            progress = ids = 0
            result = None
            t = time.perf_counter()
            with c.stream("POST", url, content=body, headers=headers) as r:
                assert r.status_code == 200, r.read()
                assert r.headers["content-type"].startswith("text/event-stream"), r.headers
                for line in r.iter_lines():
                    if line.startswith("id:"):
                        ids += 1
                    elif line.startswith("data:") and line[5:].strip():
                        msg = json.loads(line[5:])
                        if msg.get("method") == "notifications/progress":
                            progress += 1
                        elif msg.get("id") == rid:
                            result = msg
                            break
            dt = time.perf_counter() - t
            assert result is not None and "result" in result, result
            assert result["result"]["content"][0]["text"] == f"{steps} steps", result
            # every event carries an id (the SDK may add a priming one): each went through the store
            assert progress == steps and ids >= steps + 1, (progress, ids)
            return dt * 1000

        print("READY", flush=True)
        for line in sys.stdin:  # "N": make N calls, answer their latencies (ms) as one JSON line
            print("LAT", json.dumps([call() for _ in range(int(line))]), flush=True)
    """
)


class Child:
    """A child Python speaking lines on stdin/stdout; every answer awaited with a hang guard."""

    def __init__(self, name: str, code: str, *args: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, out: IO[str]) -> None:
        for line in out:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def expect(self, prefix: str) -> str:
        """The rest of the next line starting with ``prefix`` (other lines are skipped)."""
        deadline = time.monotonic() + GUARD_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"{self.name} exited (status {self.proc.wait(timeout=10)})")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise RuntimeError(f"{self.name} gave no {prefix.strip()!r} line within {GUARD_S:.0f} s")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF: the server stops itself
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _resp(port: int, command: bytes) -> bytes:
    """One inline RESP command to 127.0.0.1:``port``; the reply's raw bytes (a bulk string read whole)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command + b"\r\n")
        data = s.recv(65536)
        if data.startswith(b"$"):
            size = int(data[1 : data.index(b"\r\n")])
            while len(data) < data.index(b"\r\n") + 2 + size:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data


class Redis:
    """A real redis-server on 127.0.0.1 (nothing saved, its folder temporary), as the tests start one."""

    def __init__(self, exe: str, directory: Path) -> None:
        self.port = _free_port()
        args = [
            exe,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(directory / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for _ in range(200):  # readiness, bounded (about 10 s)
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(directory / 'redis.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if _resp(self.port, b"PING").startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer PING")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cpu_seconds(self) -> float:
        """redis-server's own CPU so far (``INFO cpu``: user + system of its process)."""
        info = _resp(self.port, b"INFO cpu").decode()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])

    def commands(self) -> dict[str, int]:
        """Calls per command since the last ``CONFIG RESETSTAT`` (``INFO commandstats``), ours left out."""
        out: dict[str, int] = {}
        for line in _resp(self.port, b"INFO commandstats").decode().splitlines():
            if line.startswith("cmdstat_"):
                name, stats = line[len("cmdstat_") :].split(":", 1)
                if name.split("|")[0] not in ("info", "config", "ping"):
                    out[name] = int(stats.split("calls=")[1].split(",")[0])
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Subject:
    """One server under test, its client, and what its rounds measured."""

    name: str
    server: Child
    client: Child
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    calls: int = 0
    round_cpu_us: list[float] = field(default_factory=list)

    def cpu(self) -> float:
        self.server.send("cpu")
        return float(self.server.expect("CPU "))

    def run(self, calls: int) -> list[float]:
        self.client.send(str(calls))
        return list(json.loads(self.client.expect("LAT ")))


def _measure(subject: Subject, calls: int, redis: Redis, count_redis: bool) -> None:
    cpu0, rcpu0 = subject.cpu(), redis.cpu_seconds()
    lat = subject.run(calls)
    cpu1, rcpu1 = subject.cpu(), redis.cpu_seconds()
    subject.latencies_ms += lat
    subject.cpu_s += cpu1 - cpu0
    subject.calls += len(lat)
    subject.round_cpu_us.append((cpu1 - cpu0) / len(lat) * 1e6)
    if count_redis:
        subject.redis_cpu_s += rcpu1 - rcpu0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stats(s: Subject) -> dict[str, float]:
    v = s.latencies_ms
    return {
        "cpu_us_per_call": round(s.cpu_s / s.calls * 1e6, 1),
        "redis_server_cpu_us_per_call": round(s.redis_cpu_s / s.calls * 1e6, 1),
        "p50_ms": round(_pct(v, 0.50), 3),
        "p90_ms": round(_pct(v, 0.90), 3),
        "p99_ms": round(_pct(v, 0.99), 3),
        "mean_ms": round(statistics.fmean(v), 3),
        "calls": s.calls,
    }


def _open(name: str, redis_url: str, steps: int) -> Subject:
    server = Child(f"server {name}", SERVER, redis_url)
    try:
        url = server.expect("URL ")
        client = Child(f"client of {name}", CLIENT, url, str(steps))
        client.expect("READY")
    except BaseException:
        server.close()
        raise
    return Subject(name, server, client)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per server (all rounds)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds the calls are split into")
    parser.add_argument("--steps", type=int, default=5, help="progress notes per call")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured calls per server first")
    args = parser.parse_args()
    if args.calls < 1 or args.rounds < 1 or args.steps < 0 or args.warmup < 0:
        parser.error("--calls and --rounds must be positive, --steps and --warmup not negative")
    exe = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)), None
    )
    if exe is None:
        print("redis-server is not installed (apt-get install redis-server): nothing measured")
        return 2
    per_round = max(1, args.calls // args.rounds)

    subjects: list[Subject] = []
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        redis = Redis(exe, Path(tmp))
        try:
            subjects.append(_open("memory", "", args.steps))
            subjects.append(_open("redis", redis.url, args.steps))
            for s in subjects:
                s.run(args.warmup)
            _resp(redis.port, b"CONFIG RESETSTAT")  # count the commands of the measured calls only
            for r in range(args.rounds):
                for s in subjects if r % 4 in (0, 3) else subjects[::-1]:  # ABBA BAAB ...
                    _measure(s, per_round, redis, count_redis=s.name == "redis")
            commands = redis.commands()
            redis_version = _resp(redis.port, b"INFO server").decode().split("redis_version:")[1].split()[0]
        finally:
            for s in subjects:
                s.client.close()
                s.server.close()
            redis.stop()

    mem, red = (_stats(s) for s in subjects)
    print(
        f"tools/call with {args.steps} progress notes, streamed (SSE), stateful, c=1: "
        f"{per_round} calls x {args.rounds} alternating rounds per server; redis-server {redis_version}"
    )
    print(f"{'event store':<13}{'CPU us/call':>12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, st in (("memory", mem), ("redis", red)):
        print(
            f"{name:<13}{st['cpu_us_per_call']:>12.0f}{st['p50_ms']:>9.3f}{st['p90_ms']:>9.3f}"
            f"{st['p99_ms']:>9.3f}{st['mean_ms']:>9.3f}"
        )
    own = red["redis_server_cpu_us_per_call"]
    print(f"redis-server's own CPU per call (not in the server's figure): {own:.0f} us")
    per_call = {name: n / red["calls"] for name, n in sorted(commands.items(), key=lambda kv: -kv[1])}
    print("Redis commands per call: " + ", ".join(f"{name} {n:.2f}" for name, n in per_call.items()))
    cpu_ratio = red["cpu_us_per_call"] / mem["cpu_us_per_call"]
    added_p50 = red["p50_ms"] - mem["p50_ms"]
    rounds = [b / a for a, b in zip(subjects[0].round_cpu_us, subjects[1].round_cpu_us, strict=True)]
    print(
        f"redis / memory: CPU per call x{cpu_ratio:.2f} (per round x{min(rounds):.2f}..x{max(rounds):.2f}), "
        f"with redis-server's x{(red['cpu_us_per_call'] + own) / mem['cpu_us_per_call']:.2f}; "
        f"p50 {added_p50:+.3f} ms, p90 {red['p90_ms'] - mem['p90_ms']:+.3f} ms"
    )
    cpu_ok, p50_ok = cpu_ratio <= TARGET_CPU_RATIO, added_p50 <= TARGET_ADDED_P50_MS

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print(f"  {verdict(cpu_ok)}  server CPU per call x{cpu_ratio:.2f}  (target <= x{TARGET_CPU_RATIO})")
    print(f"  {verdict(p50_ok)}  p50 {added_p50:+.3f} ms  (target <= +{TARGET_ADDED_P50_MS:g} ms)")
    print(f"  {verdict(cpu_ok and p50_ok)}  issue 16's target (a report: the exit status stays 0)")
    out: dict[str, Any] = {"bench": "redis_events", "steps": args.steps, "cpu_ratio": round(cpu_ratio, 3)}
    out |= {f"{n}_{k}": v for n, st in (("memory", mem), ("redis", red)) for k, v in st.items()}
    out["redis_commands_per_call"] = {name: round(n, 2) for name, n in per_call.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
