"""Latency the gateway hop adds to a tool call: ``python benchmarks/bench_gateway.py``.

One mcp-embed instance (``echo``) and one ``mcp-embed gateway`` run in two processes of their own,
the instance listed in a registry folder made for the run. This process holds one stateful MCP
session on each over a keep-alive connection (``http.client``: the client adds almost nothing)
and alternates plain ``tools/call`` requests, ``echo`` directly and ``maya-1__echo`` through the
gateway, so both see the same conditions. The difference of the two medians is what the hop
costs. Goal: at most +1 ms at p50.

Standalone: needs only mcp-embed. ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

from harness.stats import percentile

GOAL_ADDED_P50_MS = 1.0
VERSION = "2025-11-25"
_ids = itertools.count(1)


def serve_instance() -> None:
    """The instance (``--serve-instance``): echo, listed in $MCP_EMBED_REGISTRY_DIR."""
    from mcp_embed import McpHttpConfig, create_skill_server

    server = create_skill_server("maya", McpHttpConfig(port=0, enable_file_logging=False))

    @server.tool()
    def echo(text: str) -> str:
        """Echo."""
        return text

    handle = server.start()
    print(f"URL {handle.mcp_url()}", flush=True)
    handle.wait()


class Session:
    """One MCP session over one keep-alive HTTP/1.1 connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self.headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": VERSION,
        }
        info = {"name": "bench-gateway", "version": "1"}
        params = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": info}
        self.rpc("initialize", params)
        self.notify("notifications/initialized")

    def _post(self, body: dict[str, Any]) -> tuple[http.client.HTTPResponse, bytes]:
        try:
            self.conn.request("POST", self.path, json.dumps(body), self.headers)
        except (BrokenPipeError, ConnectionResetError):
            # hypercorn closed the kept-alive connection (its request limit): the request was not
            # read, so it goes again on a new one (about once per thousand calls).
            self.conn.close()
            self.conn.request("POST", self.path, json.dumps(body), self.headers)
        response = self.conn.getresponse()
        return response, response.read()

    def notify(self, method: str) -> None:
        self._post({"jsonrpc": "2.0", "method": method})

    def rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = next(_ids)
        response, raw = self._post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        session = response.getheader("mcp-session-id")
        if session:
            self.headers["mcp-session-id"] = session
        text = raw.decode()
        if (response.getheader("content-type") or "").startswith("text/event-stream"):
            text = next(ln[5:] for ln in text.splitlines() if ln.startswith("data:") and ln[5:].strip())
        message = json.loads(text)
        if "result" not in message:
            raise RuntimeError(f"{method} failed: {message}")
        result: dict[str, Any] = message["result"]
        return result

    def call(self, tool: str, progress: bool = False) -> float:
        params: dict[str, Any] = {"name": tool, "arguments": {"text": "hi"}}
        if progress:  # served by the SDK on both sides, and by the SDK client in the gateway
            params["_meta"] = {"progressToken": next(_ids)}
        started = time.perf_counter()
        result = self.rpc("tools/call", params)
        elapsed = time.perf_counter() - started
        if result.get("isError") or result["content"][0]["text"] != "hi":
            raise RuntimeError(f"{tool} answered wrongly: {result}")
        return elapsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _line(proc: subprocess.Popen[str], prefix: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"{proc.args} did not print {prefix!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per route (default 1000)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--serve-instance", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_instance:
        serve_instance()
        return 0

    folder = tempfile.mkdtemp(prefix="mcp-embed-bench-gateway-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_EMBED_")}
    env.update(MCP_EMBED_REGISTRY_DIR=folder, MCP_EMBED_ENABLE_FILE_LOGGING="false", PYTHONUNBUFFERED="1")
    popen: dict[str, Any] = {"env": env, "stdout": subprocess.PIPE, "text": True}
    port = _free_port()
    procs: list[subprocess.Popen[str]] = []
    try:
        instance = subprocess.Popen([sys.executable, __file__, "--serve-instance"], **popen)
        procs.append(instance)
        direct_url = _line(instance, "URL ").split(" ", 1)[1]
        gw_args = [
            sys.executable,
            "-m",
            "mcp_embed",
            "gateway",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ]
        gateway = subprocess.Popen(gw_args, **popen)
        procs.append(gateway)
        _line(gateway, "mcp-embed gateway: serving")
        direct = Session(direct_url)
        through = Session(f"http://127.0.0.1:{port}/mcp")
        deadline = time.monotonic() + 30
        while not any(t["name"] == "maya-1__echo" for t in through.rpc("tools/list", {})["tools"]):
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway never listed maya-1__echo")
            time.sleep(0.1)

        routes = {
            "direct": lambda: direct.call("echo"),
            "gateway": lambda: through.call("maya-1__echo"),
            "direct, progress": lambda: direct.call("echo", progress=True),
            "gateway, progress": lambda: through.call("maya-1__echo", progress=True),
        }
        for _ in range(args.warmup):
            for route in routes.values():
                route()
        times: dict[str, list[float]] = {name: [] for name in routes}
        for _ in range(args.calls):  # interleaved: every route sees the same machine
            for name, route in routes.items():
                times[name].append(route())
    finally:
        for proc in reversed(procs):  # the gateway first: it ends its sessions with the instance
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    ms = {route: [t * 1000 for t in values] for route, values in times.items()}
    p50 = {route: statistics.median(values) for route, values in ms.items()}
    p90 = {route: percentile(values, 0.9) for route, values in ms.items()}
    added = p50["gateway"] - p50["direct"]
    ratio = p50["gateway"] / p50["direct"]
    added_progress = p50["gateway, progress"] - p50["direct, progress"]
    print(f"tools/call echo, {args.calls} calls per route, interleaved, one keep-alive session each")
    print(f"  {'route':<20}{'p50 ms':>10}{'p90 ms':>10}")
    for route in times:
        print(f"  {route:<20}{p50[route]:>10.3f}{p90[route]:>10.3f}")
    verdict = "PASS" if added <= GOAL_ADDED_P50_MS else "MISS"
    goal = f"goal +{GOAL_ADDED_P50_MS:g} ms: {verdict}"
    print(f"gateway hop: +{added:.3f} ms at p50 ({ratio:.2f}x direct); {goal}")
    print(f"gateway hop with progress (the SDK client): +{added_progress:.3f} ms at p50")
    if args.json:
        figures = {
            "calls": args.calls,
            "p50_ms": p50,
            "p90_ms": p90,
            "added_p50_ms": added,
            "added_p50_ms_with_progress": added_progress,
            "ratio_p50": ratio,
            "goal_added_p50_ms": GOAL_ADDED_P50_MS,
            "python": platform.python_version(),
            "platform": platform.platform(),
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
