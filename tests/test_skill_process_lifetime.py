"""A skill's own process, and every process it started, ends with its call: on cancel, on timeout,
on stop() in both spawn modes, and when the host dies (kill -9). POSIX: process groups and /proc."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ACCEPT, INIT, process_gone, wait_until
from mcp_embed import McpHttpConfig, create_skill_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups and signals")

BOUND_S = 10.0  # how long a killed skill process and its grandchild may take to be gone


def _skill(root: Path) -> Path:
    """A skill whose tools start a grandchild ``sleep 60``, write both pids, and never return."""
    pids = root / "pids.json"
    folder = root / "skills" / "spawner"
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text(
        "---\nname: spawner\ndescription: Starts a grandchild.\n---\n# spawner\n"
    )
    (folder / "scripts" / "tool.py").write_text(
        textwrap.dedent(
            f"""
            import json, os, subprocess, time

            def hold() -> str:
                '''Start a grandchild and wait.'''
                child = subprocess.Popen(["sleep", "60"])
                with open({str(pids) + ".tmp"!r}, "w") as fh:
                    json.dump({{"skill": os.getpid(), "grandchild": child.pid}}, fh)
                os.replace({str(pids) + ".tmp"!r}, {str(pids)!r})
                time.sleep(60)
                return "late"
            """
        )
    )
    (folder / "scripts" / "hold.sh").write_text(
        f'sleep 60 &\necho "{{\\"skill\\": $$, \\"grandchild\\": $!}}" > {pids}.tmp\n'
        f"mv {pids}.tmp {pids}\nwait\n"
    )
    (folder / "tools.yaml").write_text(
        textwrap.dedent(
            """
            tools:
              - {name: hold, source_file: scripts/tool.py, function: hold, execution: subprocess,
                 timeout: 120}
              - {name: hold_briefly, source_file: scripts/tool.py, function: hold, execution: subprocess,
                 timeout: 2}
              - {name: hold_sh, source_file: scripts/hold.sh, execution: subprocess, timeout: 120}
            """
        )
    )
    return root / "skills"


def _pids(root: Path) -> tuple[int, int]:
    path = root / "pids.json"
    assert wait_until(path.exists, 30.0), "the skill did not start within 30 s"
    data = json.loads(path.read_text())
    return int(data["skill"]), int(data["grandchild"])


def _assert_both_end(pids: tuple[int, int], what: str) -> None:
    try:
        for pid, role in zip(pids, ("skill process", "its grandchild"), strict=True):
            gone = wait_until(lambda pid=pid: process_gone(pid), BOUND_S)
            assert gone, f"the {role} outlived {what} by {BOUND_S:g} s"
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


class Call:
    """A tools/call on a thread of its own over raw HTTP; the request id is 3."""

    def __init__(self, url: str, tool: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=150))
        init = self.client.post(url, json=INIT, headers=ACCEPT)
        assert init.status_code == 200, init.text
        self.headers = {
            **ACCEPT,
            "mcp-session-id": init.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        self.client.post(url, json=note, headers=self.headers)
        self.text = ""
        body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
        self.thread = threading.Thread(target=self._run, args=(body,), daemon=True)
        self.thread.start()

    def _run(self, body: dict[str, Any]) -> None:
        with contextlib.suppress(httpx.HTTPError):
            self.text = self.client.post(self.url, json=body, headers=self.headers).text

    def cancel(self) -> None:
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}}
        with httpx.Client(timeout=10) as other:
            other.post(self.url, json=note, headers=self.headers)

    def close(self) -> None:
        self.thread.join(20)
        self.client.close()


def test_cancel_ends_the_skill_process_and_its_grandchild(isolated_skill_env: None, tmp_path: Path) -> None:
    server = create_skill_server("t", McpHttpConfig(port=0), skill_paths=[_skill(tmp_path)])
    with server.start() as handle:
        call = Call(handle.mcp_url(), "spawner__hold")
        pids = _pids(tmp_path)
        call.cancel()
        _assert_both_end(pids, "the client's cancel")
        call.close()


def test_timeout_ends_the_skill_process_and_its_grandchild(isolated_skill_env: None, tmp_path: Path) -> None:
    server = create_skill_server("t", McpHttpConfig(port=0), skill_paths=[_skill(tmp_path)])
    with server.start() as handle:
        call = Call(handle.mcp_url(), "spawner__hold_briefly")
        pids = _pids(tmp_path)
        _assert_both_end(pids, "its 2 s timeout")
        call.close()
        assert "timed out after 2 s" in call.text


@pytest.mark.parametrize("spawn_mode", ["dedicated", "subprocess"])
def test_stop_ends_the_skill_process_and_its_grandchild(
    isolated_skill_env: None, tmp_path: Path, spawn_mode: str
) -> None:
    config = McpHttpConfig(port=0, spawn_mode=spawn_mode)
    server = create_skill_server("t", config, skill_paths=[_skill(tmp_path)])
    handle = server.start()
    try:
        call = Call(handle.mcp_url(), "spawner__hold")
        pids = _pids(tmp_path)
    finally:
        handle.stop()
    _assert_both_end(pids, f"stop() ({spawn_mode})")
    call.close()


HOST = """
import json, sys, time
from mcp_embed import McpHttpConfig, create_skill_server

server = create_skill_server("host", McpHttpConfig(port=0, spawn_mode=sys.argv[2]), skill_paths=[sys.argv[1]])
handle = server.start()
print(json.dumps({"url": handle.mcp_url(), "pid": handle.pid}), flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def _host(
    tmp_path: Path, skills: Path, spawn_mode: str
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    script = tmp_path / "host.py"
    script.write_text(HOST)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(skills), spawn_mode], stdout=subprocess.PIPE, text=True
    )
    info: dict[str, Any] = {}
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""))
        reader.start()
        reader.join(90)
        assert line and line[0], "the host script did not start its server"
        info = json.loads(line[0])
        yield proc, info
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        if info.get("pid") and info["pid"] != proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info["pid"], signal.SIGKILL)


@pytest.mark.parametrize(
    ("spawn_mode", "tool"),
    [("dedicated", "spawner__hold"), ("dedicated", "spawner__hold_sh"), ("subprocess", "spawner__hold")],
)
def test_a_killed_host_takes_the_skill_process_and_its_grandchild(
    isolated_skill_env: None, tmp_path: Path, spawn_mode: str, tool: str
) -> None:
    with _host(tmp_path, _skill(tmp_path), spawn_mode) as (host, info):
        call = Call(info["url"], tool)
        pids = _pids(tmp_path)
        host.send_signal(signal.SIGKILL)
        host.wait()
        _assert_both_end(pids, f"a kill -9 of the host ({spawn_mode})")
        call.close()
