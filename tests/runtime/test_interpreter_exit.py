"""A host whose interpreter exits while the server's daemon thread still runs hypercorn.

A host may forget ``stop()``, or quit on a path that never calls it. Python then finalizes with
the server thread (a daemon) inside its event loop, and 3.14 changed what daemon threads meet at
finalization: a daemon thread that touches the interpreter then hangs instead of exiting. hypercorn
has 3.14 crash reports from such threads (pgjones/hypercorn#351, #354). Each case here runs a real
host in a fresh interpreter (``sys.executable``: the lifecycle session runs this file on 3.12, 3.13
and 3.14) and requires that it exits by itself, with status 0 and no fatal error or traceback.

The bounds are hang guards, far above what an exit needs: no timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from conftest import ACCEPT, INIT, read_audit
from edge_helpers import stop_process

GUARD_S = 60.0

HOST = textwrap.dedent(
    """
    import sys, threading, time
    from mcp_embed import McpHttpConfig, ToolContext, create_skill_server

    case, log_dir = sys.argv[1], sys.argv[2]
    server = create_skill_server("exit", McpHttpConfig(port=0, log_dir=log_dir))
    never = threading.Event()

    @server.tool()
    def echo(text: str) -> str:
        \"\"\"Echo.\"\"\"
        return text

    @server.tool()
    def stuck(ctx: ToolContext) -> str:
        \"\"\"Report progress, then wait on an event nobody sets (bounded).\"\"\"
        ctx.report_progress(1, 2, "started")
        never.wait(120)
        return "late"

    if case == "starting":
        server.start(wait=False)  # exit while the thread still imports and builds the app
        print("EXITING", flush=True)
    else:
        handle = server.start()
        print("URL", handle.mcp_url(), flush=True)
        sys.stdin.readline()  # the parent has done its requests (or has a call in flight)
        print("EXITING", flush=True)
    # no stop(): the interpreter finalizes with the server thread still serving
    """
)


def _host(case: str, log_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOST, case, str(log_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # start() returns ready or raises: the line comes, or EOF
    if not line.startswith("URL "):
        _, err = proc.communicate(timeout=GUARD_S)
        pytest.fail(f"the host gave no URL ({line!r}): {err}")
    return line.split()[1]


def _session(client: httpx.Client, url: str) -> dict[str, str]:
    r = client.post(url, json=INIT, headers=ACCEPT)
    assert r.status_code == 200, r.text
    headers = {**ACCEPT, "Mcp-Session-Id": r.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-11-25"}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert client.post(url, json=note, headers=headers).status_code == 202
    return headers


def _exits_cleanly(proc: subprocess.Popen[str]) -> None:
    """It exits by itself (within the guard), with status 0, and says nothing fatal."""
    try:
        _, err = proc.communicate(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        pytest.fail(f"the host did not exit within {GUARD_S:g} s of leaving its main thread")
    assert proc.returncode == 0, err
    assert "Fatal Python error" not in err and "Traceback" not in err, err


def test_exit_while_the_server_thread_still_starts(tmp_path: Path) -> None:
    proc = _host("starting", tmp_path)
    try:
        _exits_cleanly(proc)
    finally:
        if proc.poll() is None:
            stop_process(proc)


def test_exit_after_serving_without_stop(tmp_path: Path) -> None:
    proc = _host("served", tmp_path)
    try:
        url = _url(proc)
        with httpx.Client(timeout=10) as client:
            headers = _session(client, url)
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "hi"}},
            }
            r = client.post(url, json=call, headers=headers)
            assert r.status_code == 200 and '"hi"' in r.text, r.text
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        _exits_cleanly(proc)
        # the audit log was drained at exit, though stop() never ran
        assert [r["tool"] for r in read_audit(tmp_path) if r.get("tool")] == ["echo"]
    finally:
        if proc.poll() is None:
            stop_process(proc)


def test_exit_with_a_call_in_flight_and_its_stream_open(tmp_path: Path) -> None:
    proc = _host("in-flight", tmp_path)
    try:
        url = _url(proc)
        with httpx.Client(timeout=GUARD_S) as client:
            headers = _session(client, url)
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "stuck", "arguments": {}, "_meta": {"progressToken": "p"}},
            }
            with client.stream("POST", url, json=call, headers=headers) as r:
                assert r.status_code == 200
                for line in r.iter_lines():  # the tool runs: its progress note has come
                    if line.startswith("data:") and "notifications/progress" in line:
                        assert json.loads(line[5:])["params"]["progress"] == 1
                        break
                assert proc.stdin is not None
                proc.stdin.write("go\n")  # exit now: the tool waits in its worker, the stream is open
                proc.stdin.flush()
                _exits_cleanly(proc)
    finally:
        if proc.poll() is None:
            stop_process(proc)
