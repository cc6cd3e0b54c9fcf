"""spawn_mode="subprocess": a child process serves HTTP, the host runs the tools, and the child dies
with its host. Outcomes only: where the issue names a time bound, the operation gets that bound as
its own timeout (a client's read timeout, stop(timeout), a bounded poll) and the test asserts it
completed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from conftest import ACCEPT, INIT, demo_server, process_gone, sdk_client, wait_until
from mcp_embed import ConfigError, McpHttpConfig, ServerStartError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and /proc")


def _kill(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _port_free(port: int) -> bool:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


HOST_SCRIPT = """
import json, sys, time
from mcp_embed import McpHttpConfig, create_skill_server

server = create_skill_server("host", McpHttpConfig(
    port=0, spawn_mode="subprocess", dispatcher="manual", main_thread_timeout=0.5, json_response=True,
))

@server.tool()
def echo(text: str) -> str:
    return text

@server.tool(affinity="main")
def selection() -> list[str]:
    return ["never"]

handle = server.start()
print(json.dumps({"port": handle.port, "pid": handle.pid}), flush=True)
time.sleep(float(sys.argv[1]))  # the host's main thread is blocked: nobody pumps
"""


@contextlib.contextmanager
def host_process(tmp_path: Path, sleep_s: float) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    script = tmp_path / "host.py"
    script.write_text(HOST_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(sleep_s)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    child_pid = None
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""))
        reader.start()
        reader.join(90)
        assert line and line[0], "the host script did not start its server"
        info = json.loads(line[0])
        child_pid = info["pid"]
        yield proc, info["port"], child_pid
    finally:
        _kill(proc.pid)
        proc.wait()
        _kill(child_pid)


def test_config_accepts_subprocess_and_names_it_in_errors() -> None:
    cfg = McpHttpConfig(spawn_mode="subprocess", python_executable="/usr/bin/python3")
    assert cfg.spawn_mode == "subprocess" and cfg.python_executable == "/usr/bin/python3"
    assert McpHttpConfig().python_executable is None
    with pytest.raises(ConfigError, match="subprocess"):
        McpHttpConfig(spawn_mode="fork")


def test_a_dcc_application_executable_is_refused_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_embed.runtime.subprocess.process import python_executable

    monkeypatch.setattr(sys, "executable", "/usr/autodesk/maya2025/bin/maya.bin")
    with pytest.raises(ServerStartError, match="mayapy"):
        python_executable(None)
    assert python_executable("/opt/mayapy") == "/opt/mayapy"


def test_protocol_answers_while_the_hosts_main_thread_sleeps(tmp_path: Path) -> None:
    with host_process(tmp_path, 10) as (_, port, _child):
        url = f"http://127.0.0.1:{port}/mcp"
        with httpx.Client(timeout=1.0) as client:  # the bound: 1 s per answer
            init = client.post(url, json=INIT, headers=ACCEPT)
            assert init.status_code == 200, init.text
            assert init.json()["result"]["serverInfo"]["name"] == "mcp-embed"
            sid = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
            client.post(
                url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=ACCEPT | sid
            )
            listed = client.post(
                url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=ACCEPT | sid
            )
            assert {t["name"] for t in listed.json()["result"]["tools"]} == {"echo", "selection"}
            # An "any" tool runs on a host worker thread: the sleeping main thread is not needed.
            echo = {"name": "echo", "arguments": {"text": "hi"}}
            called = client.post(
                url,
                json={"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": echo},
                headers=ACCEPT | sid,
            )
            assert called.json()["result"]["content"][0]["text"] == "hi"
        with httpx.Client(timeout=5.0) as client:
            main = {"name": "selection", "arguments": {}}
            answer = client.post(
                url,
                json={"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": main},
                headers=ACCEPT | sid,
            ).json()["result"]
        assert answer["isError"] is True
        assert "timed out before it started: main thread busy" in answer["content"][0]["text"]
        with httpx.Client(timeout=1.0) as client:  # /health never waits for the host either
            main_thread = client.get(f"http://127.0.0.1:{port}/health").json()["main_thread"]
        assert main_thread["dispatcher"] == "manual" and main_thread["queue_depth"] == 0
        assert "reported_s_ago" in main_thread


def test_the_child_dies_with_a_killed_host_and_frees_the_port(tmp_path: Path) -> None:
    with host_process(tmp_path, 60) as (host, port, child_pid):
        assert not _port_free(port)
        host.send_signal(signal.SIGKILL)
        host.wait()
        assert wait_until(lambda: _port_free(port), 2.0), "the port is still bound 2 s after the host died"
        assert wait_until(lambda: process_gone(child_pid), 2.0), "the server process outlived its host"


def test_a_killed_child_is_reported_and_restart_brings_it_back() -> None:
    server = demo_server(spawn_mode="subprocess")
    handle = server.start()
    first = handle.pid
    try:
        assert first is not None and first != os.getpid()
        port = handle.port
        os.kill(first, signal.SIGKILL)
        assert handle.wait(30)
        assert not handle.is_running and not server.is_running
        assert handle.reason is not None and "signal 9" in handle.reason
        assert process_gone(first)

        handle.restart()
        assert handle.is_running and handle.reason is None
        assert handle.pid not in (None, first) and handle.port == port

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                assert (await client.call_tool("echo", {"text": "back"})).content[0].text == "back"

        anyio.run(main)
    finally:
        pid = handle.pid
        handle.stop()
        _kill(pid)


def test_stop_ends_the_child_within_a_second_and_reaps_it() -> None:
    handle = demo_server(spawn_mode="subprocess").start()
    pid = handle.pid
    assert pid is not None
    try:
        handle.stop(timeout=1.0)
        assert handle.wait(0)  # stopped by the time stop() returned
        assert not handle.is_running and handle.reason is None
        assert process_gone(pid) and not os.path.exists(f"/proc/{pid}")  # reaped, not a zombie
        assert _port_free(handle.port)
    finally:
        _kill(pid)


def test_large_payloads_and_concurrent_calls_through_the_bridge() -> None:
    # JSON responses: the SDK client refuses SSE events over 1 MiB.
    server = demo_server(spawn_mode="subprocess", max_body_bytes=32 * 1024 * 1024, json_response=True)

    @server.tool()
    def mirror(tag: str, data: str, delay: float = 0.0) -> str:
        time.sleep(delay)
        return tag + ":" + data[::-1]

    big = "".join(chr(97 + i % 26) for i in range(4 * 1024 * 1024 + 7))
    with server.start() as handle:
        pid = handle.pid
        try:

            async def main() -> None:
                async with sdk_client(handle.mcp_url()) as client:
                    result = await client.call_tool("mirror", {"tag": "big", "data": big})
                    assert not result.is_error
                    assert result.content[0].text == "big:" + big[::-1]

                    answers: dict[int, str] = {}

                    async def one(i: int) -> None:
                        data = f"{i:02d}" * (32 * 1024 + i)
                        r = await client.call_tool(
                            "mirror", {"tag": str(i), "data": data, "delay": 0.05 * (i % 4)}
                        )
                        answers[i] = r.content[0].text

                    async with anyio.create_task_group() as tg:
                        for i in range(16):
                            tg.start_soon(one, i)
                    assert answers == {i: f"{i}:" + (f"{i:02d}" * (32 * 1024 + i))[::-1] for i in range(16)}

            anyio.run(main)
        finally:
            _kill(pid) if not handle.is_running else None


def test_tools_added_and_removed_while_running_and_calls_are_audited_by_the_child(tmp_path: Path) -> None:
    server = demo_server(spawn_mode="subprocess", log_dir=str(tmp_path))
    with server.start() as handle:

        def late(x: int) -> int:
            return x * 2

        server.add_tool(late)
        assert server.remove_tool("fail")

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "late" in names and "fail" not in names
                assert (await client.call_tool("late", {"x": 21})).structured_content == {"result": 42}

        anyio.run(main)
        child = handle.pid
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    calls = [r for r in records if r["event"] == "tool_call" and r["tool"] == "late"]
    assert calls and calls[0]["status"] == "ok"
    app_log = (tmp_path / "mcp-embed.log").read_text()
    assert f"server process {child} is serving" in app_log


def test_cancelled_main_thread_call_is_withdrawn_in_the_host() -> None:
    from mcp_embed import McpHttpConfig as Cfg
    from mcp_embed import create_skill_server

    server = create_skill_server("t", Cfg(port=0, spawn_mode="subprocess", dispatcher="manual"))
    ran: list[str] = []

    @server.tool(affinity="main", timeout=0.3)
    def scene() -> str:
        ran.append("x")
        return "ran"

    with server.start() as handle:
        with httpx.Client(timeout=5.0) as client:
            call = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "scene", "arguments": {}},
            }
            # stateless fast path needs a session in stateful mode: initialise first
            init = client.post(handle.mcp_url(), json=INIT, headers=ACCEPT)
            sid = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
            answer = client.post(handle.mcp_url(), json=call, headers=ACCEPT | sid)
        text = answer.text
        assert "timed out" in text
        assert handle.pump() == 0  # the timed-out call was withdrawn, not left for the main thread
        assert ran == []


def test_resources_and_prompts_are_read_from_the_host() -> None:
    server = demo_server(spawn_mode="subprocess")

    @server.resource("app://scene/{node}", mime_type="application/json")
    def node(node: str) -> str:
        return json.dumps({"node": node, "pid": os.getpid()})

    server.add_resource("app://blob", lambda: b"\x00\x01", name="blob")

    @server.prompt(description="Review a node.")
    def review(node: str) -> str:
        return f"Review {node}."

    with server.start() as handle:
        server.add_resource("app://late", lambda: "late text", name="late")

        async def main() -> None:
            async with sdk_client(handle.mcp_url()) as client:
                uris = {str(r.uri) for r in (await client.list_resources()).resources}
                assert {"app://blob", "app://late"} <= uris
                text = (await client.read_resource("app://scene/cube")).contents[0].text
                assert json.loads(text) == {"node": "cube", "pid": os.getpid()}  # read in the host
                assert (await client.read_resource("app://late")).contents[0].text == "late text"
                blob = (await client.read_resource("app://blob")).contents[0]
                assert blob.blob == "AAE="
                prompt = await client.get_prompt("review", {"node": "cube"})
                assert prompt.messages[0].content.text == "Review cube."

        anyio.run(main)


def test_a_client_cancel_withdraws_the_queued_main_thread_call_in_the_host() -> None:
    from mcp_embed import create_skill_server

    server = create_skill_server("t", McpHttpConfig(port=0, spawn_mode="subprocess", dispatcher="manual"))
    ran: list[str] = []

    @server.tool(affinity="main")
    def scene() -> str:
        ran.append("x")
        return "ran"

    with server.start() as handle, httpx.Client(timeout=10.0) as client:
        url = handle.mcp_url()
        init = client.post(url, json=INIT, headers=ACCEPT)
        sid = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "scene", "arguments": {}},
        }
        answer: list[httpx.Response] = []
        caller = threading.Thread(
            target=lambda: answer.append(client.post(url, json=call, headers=ACCEPT | sid))
        )
        caller.start()
        try:
            # The call crossed the bridge and waits in the host's main-thread queue.
            assert wait_until(lambda: handle.main_thread_status().get("queue_depth") == 1, 10.0)
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
            with httpx.Client(timeout=5.0) as other:
                assert other.post(url, json=cancel, headers=ACCEPT | sid).status_code == 202
            caller.join(10)
            assert answer and "Request cancelled" in answer[0].text
            # Withdrawn in the host: nothing is left for the main thread to run.
            assert wait_until(lambda: handle.main_thread_status().get("queue_depth") == 0, 5.0)
            assert handle.pump() == 0 and ran == []
        finally:
            handle.pump()  # never leave the caller thread waiting
            caller.join(10)


def test_start_without_waiting_returns_the_bound_port_before_the_child_answers() -> None:
    server = demo_server(spawn_mode="subprocess")
    handle = server.start(wait=False)
    try:
        assert handle.port > 0 and not _port_free(handle.port)  # bound by start() itself
        handle.wait_ready(60)
        assert handle.is_ready and handle.pid not in (None, os.getpid())
        assert httpx.get(handle.url + "/health", timeout=5).json()["tools"] == 5
    finally:
        pid = handle.pid
        handle.stop()
        _kill(pid)


def test_a_child_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    server = demo_server(spawn_mode="subprocess", python_executable=str(tmp_path / "no-such-python"))
    with pytest.raises(ServerStartError, match="no-such-python"):
        server.start(timeout=30)
    assert not server.is_running
    # An interpreter that exits at once: reported, not waited for until the timeout.
    server = demo_server(spawn_mode="subprocess", python_executable="/bin/false")
    with pytest.raises(ServerStartError, match="exited before it connected"):
        server.start(timeout=60)
    assert not server.is_running
