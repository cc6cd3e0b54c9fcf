"""How long ``initialize`` waits while the host's main thread sits in one long C call holding the GIL.

Standalone: ``python benchmarks/bench_gil.py [--hold 2.0] [--rounds 3]``.
A DCC that runs a long C++ operation without releasing the GIL (a heavy deformer, a scene load)
stops every other Python thread, the dedicated server thread included. This measures that, per
spawn mode: the host's main thread enters a single C call that holds the GIL for about ``--hold``
seconds (a backtracking regular expression: one ``re.match``, no bytecode runs, so the interpreter
never switches threads), and a client in a child process sends ``initialize`` while it runs. Prints
the client's ``initialize`` latency per mode and the dedicated/subprocess ratio, in one run.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import textwrap
import time
from typing import Any

CLIENT = textwrap.dedent(
    """
    import json, sys, time
    import httpx
    url, ready = sys.argv[1], sys.argv[2]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "bench-gil", "version": "0"}}})
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    with httpx.Client(timeout=60.0) as c:
        c.post(url, content=body, headers=headers)  # warm: the connection and the server's first reply
        open(ready, "w").close()
        time.sleep(0.3)  # the host is now inside its C call
        t = time.perf_counter()
        r = c.post(url, content=body, headers=headers)
        assert r.status_code == 200 and "serverInfo" in r.text, r.text
        print(json.dumps((time.perf_counter() - t) * 1000))
    """
)

_PATTERN = re.compile(r"(a+)+$")


def _calibrate(hold: float) -> int:
    """The subject length for which one ``re.match`` takes about ``hold`` seconds (it doubles per char)."""
    n = 16
    while True:
        t = time.perf_counter()
        _PATTERN.match("a" * n + "b")
        took = time.perf_counter() - t
        if took * 2 > hold or n > 40:
            return n + (1 if took * 1.5 < hold else 0)
        n += 1


def _server(mode: str) -> Any:
    from mcp_embed import McpHttpConfig, create_skill_server

    cfg = McpHttpConfig(port=0, spawn_mode=mode, enable_file_logging=False, server_name=f"bench-gil-{mode}")
    return create_skill_server("bench", cfg).start()


def _one(url: str, n: int, ready: str) -> tuple[float, float]:
    """Start a client, hold the GIL in one C call once it is ready; returns (client ms, C call s)."""
    import os

    if os.path.exists(ready):
        os.remove(ready)
    client = subprocess.Popen([sys.executable, "-c", CLIENT, url, ready], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(ready):
        if time.monotonic() > deadline or client.poll() is not None:
            client.kill()
            raise SystemExit("the client did not get ready")
        time.sleep(0.01)
    t = time.perf_counter()
    _PATTERN.match("a" * n + "b")  # holds the GIL throughout
    held = time.perf_counter() - t
    out, _ = client.communicate(timeout=120)
    if client.returncode != 0:
        raise SystemExit(f"the client failed (exit {client.returncode})")
    return float(json.loads(out)), held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=2.0, help="seconds the C call holds the GIL")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import os
    import tempfile

    n = _calibrate(args.hold)
    ready = os.path.join(tempfile.mkdtemp(prefix="bench-gil-"), "ready")
    results: dict[str, list[float]] = {"dedicated": [], "subprocess": []}
    holds: list[float] = []
    for _ in range(args.rounds):
        for mode in results:  # interleaved, so drift on the machine hits both alike
            with _server(mode) as handle:
                ms, held = _one(handle.mcp_url(), n, ready)
            results[mode].append(ms)
            holds.append(held)
    print(f"host main thread held the GIL in one C call for {statistics.median(holds):.2f} s (median)")
    print(f"{'mode':<12} {'initialize p50 ms':>18} {'max ms':>10}")
    for mode, values in results.items():
        print(f"{mode:<12} {statistics.median(values):>18.1f} {max(values):>10.1f}")
    ded, sub = (statistics.median(results[m]) for m in ("dedicated", "subprocess"))
    print(f"dedicated/subprocess: {ded / sub:.0f}x ({ded - sub:+.0f} ms at p50)")


if __name__ == "__main__":
    main()
