"""start/stop: readiness, idempotent stop, open streams, leaks, port in use, host event loops."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time

import httpx
import pytest

from conftest import ACCEPT, INIT, demo_server, serving
from mcp_embed import McpHttpConfig, PortInUseError, ServerStartError, create_skill_server


def _fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mcp-embed:")]


def test_start_returns_a_ready_server_and_stop_is_idempotent() -> None:
    server = demo_server()
    handle = server.start()
    assert handle.is_running and handle.is_ready
    assert handle.port > 0
    assert handle.mcp_url() == f"http://127.0.0.1:{handle.port}/mcp"
    # Ready means it answers: no retry loop needed.
    health = httpx.get(handle.url + "/health").json()
    assert health["status"] == "healthy" and health["tools"] == 5 and health["name"] == "mcp-embed"
    assert set(health) == {"status", "name", "version", "uptime_s", "tools", "main_thread"}
    assert health["main_thread"]["dispatcher"] == "inline" and health["main_thread"]["queue_depth"] == 0
    handle.stop()
    handle.stop()
    assert not handle.is_running
    assert handle.wait(0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{handle.port}/health")


def test_start_stop_start_on_the_same_server_object() -> None:
    server = demo_server()
    for _ in range(3):
        with server.start() as handle:
            assert httpx.get(handle.url + "/health").status_code == 200
        assert not handle.is_running


def test_starting_twice_is_a_clear_error() -> None:
    server = demo_server()
    with server.start(), pytest.raises(ServerStartError, match="already running"):
        server.start()


def test_wait_false_returns_before_ready_and_wait_ready_waits() -> None:
    server = demo_server()
    handle = server.start(wait=False)
    try:
        assert handle.port > 0  # bound before start() returned
        handle.wait_ready(30)
        assert httpx.get(handle.url + "/health").status_code == 200
    finally:
        handle.stop()


def test_200_start_stop_cycles_leave_no_thread_fd_or_socket() -> None:
    server = demo_server()
    with server.start() as warm:  # first start pays the imports
        httpx.get(warm.url + "/health")
    gc.collect()
    fds, threads = _fds(), threading.active_count()
    ports = set()
    for _ in range(200):
        handle = server.start()
        ports.add(handle.port)
        handle.stop()
        assert not handle.is_running
    gc.collect()
    assert _server_threads() == []
    assert threading.active_count() <= threads
    if fds >= 0:
        assert _fds() <= fds, "file descriptors leaked across start/stop cycles"
    # Every port is released: nothing listens on it (SO_REUSEADDR only steps over TIME_WAIT).
    for port in list(ports)[:20]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()


def test_stop_with_an_open_stream_and_a_call_in_flight() -> None:
    """stop(timeout=1.0) joins the server thread for at most 1 s; a dead thread afterwards proves
    the open GET stream and the blocked call did not hold it (hypercorn #308)."""
    release = threading.Event()
    server = create_skill_server("t", McpHttpConfig(port=0))

    @server.tool()
    def block() -> str:
        release.wait(10)
        return "released"

    handle = server.start()
    client = httpx.Client(timeout=10)
    try:
        r = client.post(handle.mcp_url(), json=INIT, headers=ACCEPT)
        sid = r.headers["mcp-session-id"]
        hdrs = {**ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        client.post(
            handle.mcp_url(), json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=hdrs
        )
        opened = threading.Event()

        def hold_get_stream() -> None:
            try:
                with client.stream(
                    "GET", handle.mcp_url(), headers={**hdrs, "Accept": "text/event-stream"}
                ) as s:
                    opened.set()
                    for _ in s.iter_raw():
                        pass
            except httpx.HTTPError:
                pass

        def call_blocking_tool() -> None:
            try:
                body = {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "block", "arguments": {}},
                }
                client.post(handle.mcp_url(), json=body, headers=hdrs)
            except httpx.HTTPError:
                pass

        t1 = threading.Thread(target=hold_get_stream, daemon=True)
        t2 = threading.Thread(target=call_blocking_tool, daemon=True)
        t1.start()
        t2.start()
        assert opened.wait(10)
        time.sleep(0.2)  # let the tool call reach the worker thread
        server_thread = _server_threads()[0]
        handle.stop(timeout=1.0)
        assert not server_thread.is_alive()
        assert not handle.is_running
        t1.join(5)
        assert not t1.is_alive(), "the client's stream was not closed by stop()"
    finally:
        release.set()
        client.close()
        handle.stop()


def test_port_in_use_is_a_clear_error_raised_in_the_caller() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = demo_server(port=port)
        with pytest.raises(PortInUseError) as info:
            server.start()
        msg = str(info.value)
        assert f"127.0.0.1:{port}" in msg and "port=0" in msg
    assert not server.is_running


def test_starts_inside_a_thread_whose_asyncio_loop_is_running() -> None:
    async def host_app() -> int:
        # A host (e.g. a Qt/asyncio app) already runs its loop here; start() must not touch it.
        handle = demo_server().start()
        try:
            loop_before = asyncio.get_running_loop()
            async with httpx.AsyncClient() as c:
                r = await c.get(handle.url + "/health")
            assert asyncio.get_running_loop() is loop_before
            return r.status_code
        finally:
            handle.stop()

    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(asyncio.run(host_app())))
    t.start()
    t.join(60)
    assert result == [200]


def test_no_signal_handlers_and_root_logging_untouched() -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    sigs = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with serving() as handle:
        httpx.get(handle.url + "/health")
    assert (root.level, list(root.handlers)) == before
    assert {s: signal.getsignal(s) for s in sigs} == sigs
    assert not logging.getLogger("hypercorn.error").handlers


def test_mcp_url_never_returns_a_wildcard_address() -> None:
    with pytest.warns(RuntimeWarning, match="no authentication"):
        handle = demo_server(host="0.0.0.0").start()
    try:
        assert handle.mcp_url() == f"http://127.0.0.1:{handle.port}/mcp"
        assert httpx.get(handle.url + "/health").status_code == 200
    finally:
        handle.stop()


def test_public_url_drives_mcp_url() -> None:
    with serving(public_url="https://mcp.example.com") as handle:
        assert handle.mcp_url() == "https://mcp.example.com/mcp"
        assert handle.local_url == f"http://127.0.0.1:{handle.port}"


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        handle = demo_server(host="::1").start()
    except ServerStartError as exc:
        pytest.skip(f"IPv6 loopback not usable here: {exc}")
    try:
        assert handle.mcp_url() == f"http://[::1]:{handle.port}/mcp"
        assert httpx.get(handle.url + "/health").status_code == 200
    finally:
        handle.stop()


def test_a_tool_with_a_bad_signature_fails_start_in_the_caller() -> None:
    server = create_skill_server("t", McpHttpConfig(port=0))

    def bad(*args: int) -> int:
        return 0

    server.add_tool(bad)
    with pytest.raises(ServerStartError, match=r"\*args"):
        server.start()
    assert not server.is_running


@pytest.mark.skipif(sys.platform == "win32", reason="uses /proc")
def test_python_version_is_reported() -> None:
    # The nox 'lifecycle' session runs this file on 3.12 and 3.13, where hypercorn #308 bites.
    assert sys.version_info >= (3, 11)


def test_listening_socket_says_tcp_so_asyncio_disables_nagle() -> None:
    """asyncio sets TCP_NODELAY on accepted sockets only when the listener's proto is TCP; without it
    a response written as headers then body waits ~40 ms for a delayed ACK."""
    from mcp_embed.runtime.thread import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_registering_tools_loads_neither_the_sdk_nor_hypercorn() -> None:
    """A host plugin registers its tools at import; the SDK (about a second) loads at start()."""
    import subprocess

    code = (
        "import sys\n"
        "from mcp_embed import create_skill_server, McpHttpConfig\n"
        "s = create_skill_server('x', McpHttpConfig(port=0))\n"
        "@s.tool()\n"
        "def f(x: int) -> int:\n"
        "    return x\n"
        "s.add_tool(lambda y: y, name='g')\n"
        "heavy = sorted(m for m in ('mcp', 'mcp_types', 'hypercorn', 'starlette') if m in sys.modules)\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "none"


def test_shutdown_and_bind_addr_as_the_dcc_mcp_core_guide_names_them() -> None:
    server = create_skill_server("generic", McpHttpConfig(port=0))
    handle = server.start()
    assert handle.bind_addr == f"127.0.0.1:{handle.port}"
    handle.shutdown()
    assert not handle.is_running
    handle.shutdown()  # idempotent, as stop() is
