"""Main-thread dispatch through the real server and the SDK's own client.

``dispatcher="manual"`` makes this test's thread the host's main thread: nothing runs a
``main`` tool until the test calls ``handle.pump()``, so a busy or blocked main thread is
simply a test that does not pump. Outcomes are asserted (thread identity, "timed out" text,
queue depth), never durations.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from dispatch_helpers import Background, Records, client, depth, health, wait_until
from mcp_embed import ConfigError, McpHttpConfig, SkillServer, ToolContext, create_skill_server


def make_server(**config: Any) -> tuple[SkillServer, dict[str, Any]]:
    config.setdefault("port", 0)
    config.setdefault("dispatcher", "manual")
    server = create_skill_server("dispatch-tests", McpHttpConfig(**config))
    state: dict[str, Any] = {"ran": [], "release": threading.Event(), "started": threading.Event()}

    @server.tool(affinity="main")
    def where() -> int:
        """The ident of the thread this ran on."""
        state["ran"].append("where")
        return threading.get_ident()

    @server.tool()
    def where_any() -> int:
        """The same, as an ``any`` tool."""
        return threading.get_ident()

    @server.tool(affinity="main", timeout=0.3)
    def quick() -> str:
        """A main-thread tool with a short timeout."""
        state["ran"].append("quick")
        return "quick"

    @server.tool(affinity="main", timeout=2.0)
    def hang() -> str:
        """Blocks the main thread until the test releases it."""
        state["started"].set()
        state["release"].wait(30)
        return "released"

    @server.tool(affinity="main")
    def steps(n: int, ctx: ToolContext) -> int:
        """Reports n progress steps from the main thread."""
        for i in range(n):
            ctx.report_progress(i + 1, n, f"step {i + 1}")
        return threading.get_ident()

    @server.tool(affinity="main")
    def until_cancelled(ctx: ToolContext) -> str:
        """Runs on the main thread until ctx.cancelled is set (bounded)."""
        state["started"].set()
        for _ in range(6000):
            if ctx.cancelled:
                state["ran"].append("saw-cancel")
                return "cancelled"
            state["release"].wait(0.005)
        return "never cancelled"

    @server.tool(affinity="main")
    def reenter() -> int:
        """Pumps from inside a main-thread job, as a tool spinning the host's event loop would."""
        return int(state["handle"].pump())

    return server, state


@pytest.fixture
def served() -> Any:
    server, state = make_server()
    handle = server.start()
    state["handle"] = handle
    try:
        yield handle, state
    finally:
        state["release"].set()
        handle.stop()


def test_main_tool_runs_on_the_pumping_thread_and_any_tool_does_not(served: Any) -> None:
    handle, _ = served
    assert handle.dispatcher == "manual"

    async def main() -> tuple[int, int]:
        async with client(handle.mcp_url()) as c:
            on_main = await c.call_tool("where", {})
            on_worker = await c.call_tool("where_any", {})
        return on_main.structured_content["result"], on_worker.structured_content["result"]

    bg = Background(main)
    wait_until(lambda: bg.done, pump=handle, what="client finished")
    main_ident, worker_ident = bg.get()
    assert main_ident == threading.get_ident()
    assert worker_ident != threading.get_ident()


@pytest.mark.filterwarnings("ignore:ping is removed")
@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_protocol_methods_never_wait_for_the_main_thread(served: Any, mode: str) -> None:
    handle, _ = served
    queued = threading.Event()

    async def main() -> tuple[list[str], Any]:
        async with client(handle.mcp_url(), mode=mode) as c, anyio.create_task_group() as tg:
            out: dict[str, Any] = {}

            async def call() -> None:
                out["r"] = await c.call_tool("where", {})

            tg.start_soon(call)
            while depth(handle) < 1:  # the main thread is not pumping: the call waits
                await anyio.sleep(0.005)
            names = [t.name for t in (await c.list_tools()).tools]
            if mode == "legacy":
                await c.send_ping()  # removed from the 2026-07-28 protocol
            try:
                await c.list_resources()
            except MCPError as exc:  # a server with no resources answers at once all the same
                assert exc.code == -32601
            queued.set()  # only now does the "host" pump
        return names, out["r"]

    bg = Background(main)
    wait_until(queued.is_set, what="list and ping answered while a main call waits")
    wait_until(lambda: bg.done, pump=handle, what="client finished")
    names, result = bg.get()
    assert "where" in names
    assert result.structured_content["result"] == threading.get_ident()


def test_each_pump_runs_at_least_one_job_and_a_pump_never_reenters(served: Any) -> None:
    handle, _ = served

    async def main() -> list[Any]:
        results: list[Any] = []
        async with client(handle.mcp_url()) as c, anyio.create_task_group() as tg:

            async def call(name: str) -> None:
                results.append((name, await c.call_tool(name, {})))

            for name in ("where", "where", "reenter"):
                tg.start_soon(call, name)
        return results

    bg = Background(main)
    wait_until(lambda: depth(handle) == 3, what="three calls queued")
    assert handle.pump(budget_ms=0) == 1  # a zero budget still runs one job...
    assert depth(handle) == 2  # ...and only one
    wait_until(lambda: bg.done, pump=handle, what="client finished")
    by_name = {name: r for name, r in bg.get()}
    assert by_name["reenter"].structured_content["result"] == 0  # the inner pump ran nothing


def test_a_full_queue_is_refused_at_once_with_an_error() -> None:
    server, _ = make_server(main_queue_depth=2, main_thread_timeout=None)
    with server.start() as handle:

        async def main() -> tuple[Any, list[Any]]:
            results: list[Any] = []
            async with client(handle.mcp_url()) as c, anyio.create_task_group() as tg:

                async def call() -> None:
                    results.append(await c.call_tool("where", {}))

                tg.start_soon(call)
                tg.start_soon(call)
                while depth(handle) < 2:
                    await anyio.sleep(0.005)
                third = await c.call_tool("where", {})
                assert depth(handle) == 2  # the refused call never entered the queue
                full.set()
            return third, results

        full = threading.Event()
        bg = Background(main)
        wait_until(full.is_set, what="third call refused")
        wait_until(lambda: bg.done, pump=handle, what="client finished")
        third, results = bg.get()
    assert third.is_error
    text = third.content[0].text
    assert "overloaded" in text and "queue full at depth 2" in text
    assert [r.is_error for r in results] == [False, False]


def test_a_call_that_waits_past_its_timeout_is_dropped_and_says_why(served: Any) -> None:
    handle, state = served

    async def main() -> Any:
        async with client(handle.mcp_url()) as c:
            return await c.call_tool("quick", {})

    result = Background(main).get()  # nobody pumps: the main thread is "busy"
    assert result.is_error
    text = result.content[0].text
    assert "timed out before it started: main thread busy for" in text
    assert "queue depth 1" in text
    assert depth(handle) == 0  # the queued job was dropped...
    assert handle.pump() == 0  # ...so the main thread has nothing to run
    assert state["ran"] == []


def test_main_thread_timeout_bounds_the_wait_of_a_tool_without_its_own() -> None:
    server, state = make_server(main_thread_timeout=0.3)
    with server.start() as handle:

        async def main() -> Any:
            async with client(handle.mcp_url()) as c:
                return await c.call_tool("where", {})

        result = Background(main).get()
        assert result.is_error and "main thread busy for" in result.content[0].text
        assert depth(handle) == 0 and state["ran"] == []


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_cancelling_a_queued_call_drops_its_job(served: Any, mode: str) -> None:
    handle, state = served

    async def main() -> None:
        async with client(handle.mcp_url(), mode=mode) as c:
            with anyio.CancelScope() as scope:

                async def cancel_when_queued() -> None:
                    while depth(handle) < 1:
                        await anyio.sleep(0.005)
                    scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_when_queued)
                    await c.call_tool("where", {})
            # The server hears the cancellation and drops the job while the main thread is busy.
            for _ in range(4000):
                if depth(handle) == 0:
                    break
                await anyio.sleep(0.005)
            assert depth(handle) == 0
            # The session still works afterwards.
            assert (await c.call_tool("where_any", {})).is_error is False

    Background(main).get()
    assert handle.pump() == 0
    assert state["ran"] == []


def test_cancelling_a_running_main_thread_call_sets_ctx_cancelled(served: Any) -> None:
    handle, state = served
    host_stop = threading.Event()

    def host_loop() -> None:  # a second "host main thread", since this one drives the client
        for _ in range(20000):
            if host_stop.is_set():
                return
            handle.pump()
            host_stop.wait(0.002)

    host = threading.Thread(target=host_loop, daemon=True)
    host.start()
    try:

        async def main() -> None:
            async with client(handle.mcp_url()) as c:
                with anyio.CancelScope() as scope:

                    async def cancel_when_running() -> None:
                        await anyio.to_thread.run_sync(state["started"].wait, 30)
                        scope.cancel()

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(cancel_when_running)
                        await c.call_tool("until_cancelled", {})

        Background(main).get()
        wait_until(lambda: "saw-cancel" in state["ran"], what="the tool saw ctx.cancelled")
    finally:
        host_stop.set()
        host.join(10)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_progress_reaches_the_client_from_a_main_thread_job(served: Any, mode: str) -> None:
    handle, _ = served
    seen: list[tuple[float, float | None, str | None]] = []

    async def main() -> Any:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async with client(handle.mcp_url(), mode=mode) as c:
            return await c.call_tool("steps", {"n": 4}, progress_callback=on_progress)

    bg = Background(main)
    wait_until(lambda: bg.done, pump=handle, what="client finished")
    result = bg.get()
    assert result.structured_content["result"] == threading.get_ident()
    assert seen == [(float(i), 4.0, f"step {i}") for i in range(1, 5)]


def test_a_wedged_job_is_reported_in_health_and_the_log(served: Any) -> None:
    handle, state = served
    host_stop = threading.Event()

    def host_loop() -> None:
        for _ in range(20000):
            if host_stop.is_set():
                return
            handle.pump()
            host_stop.wait(0.002)

    host = threading.Thread(target=host_loop, daemon=True, name="fake-host-main")
    host.start()
    try:
        with Records() as records:

            async def main() -> tuple[Any, Any]:
                async with client(handle.mcp_url()) as c:
                    hung = await c.call_tool("hang", {})  # runs, then its caller times out
                    behind = await c.call_tool("quick", {})  # queued behind the wedged job
                    return hung, behind

            hung, behind = Background(main).get()
            assert hung.is_error
            assert "timed out after 2 s on the main thread" in hung.content[0].text
            assert "cannot be interrupted" in hung.content[0].text
            assert behind.is_error
            assert "main thread busy for" in behind.content[0].text
            assert "queue depth 1" in behind.content[0].text

            report = health(handle)["main_thread"]
            assert report["running"] == "hang"
            assert report["wedged"] is True
            assert report["busy_for_s"] > 0
            assert report["queue_depth"] == 0
            assert "main-thread job 'hang' is wedged" in records.text()

            state["release"].set()
            wait_until(lambda: health(handle)["main_thread"]["running"] is None, what="job returned")
            assert "main thread is free again" in records.text()
        report = health(handle)["main_thread"]
        assert report["wedged"] is False and report["busy_for_s"] == 0
        assert state["ran"] == []  # the dropped "quick" call never ran
    finally:
        host_stop.set()
        host.join(10)


def test_inline_runs_main_tools_one_at_a_time_off_the_event_loop() -> None:
    server = create_skill_server("inline", McpHttpConfig(port=0, dispatcher="inline"))
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    @server.tool(affinity="main")
    def serial() -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(0.05)
        with lock:
            running -= 1
        return threading.current_thread().name

    with server.start() as handle:
        assert handle.dispatcher == "inline"

        async def main() -> list[str]:
            names: list[str] = []
            async with client(handle.mcp_url()) as c, anyio.create_task_group() as tg:

                async def call() -> None:
                    names.append((await c.call_tool("serial", {})).content[0].text)

                for _ in range(6):
                    tg.start_soon(call)
            return names

        names = Background(main).get()
    assert peak == 1
    assert len(names) == 6 and all(n.startswith("mcp-embed-main") for n in names)


def test_auto_with_no_host_detected_is_inline() -> None:
    server = create_skill_server("plain", McpHttpConfig(port=0))
    with server.start() as handle:
        assert handle.dispatcher == "inline"
        assert health(handle)["main_thread"]["dispatcher"] == "inline"


def test_stop_drops_queued_calls_and_answers_their_callers() -> None:
    server, state = make_server(stateless=True, json_response=True, main_thread_timeout=None)
    handle = server.start()
    outcome: dict[str, Any] = {}

    def post() -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "where"}}
        headers = {"Accept": "application/json, text/event-stream"}
        try:
            outcome["status"] = httpx.post(
                handle.mcp_url(), json=body, headers=headers, timeout=30
            ).status_code
        except httpx.HTTPError as exc:  # the connection closed under it: an answer, not a hang
            outcome["error"] = type(exc).__name__

    caller = threading.Thread(target=post, daemon=True)
    caller.start()
    try:
        wait_until(lambda: depth(handle) == 1, what="queued")
    finally:
        handle.stop()
    caller.join(30)
    assert not caller.is_alive() and outcome
    assert handle.pump() == 0 and state["ran"] == []  # dropped, never run


def test_config_names_the_allowed_dispatchers() -> None:
    with pytest.raises(ConfigError) as info:
        McpHttpConfig(dispatcher="unreal")
    msg = str(info.value)
    assert "McpHttpConfig.dispatcher='unreal'" in msg
    for name in ("auto", "qt", "blender", "maya", "houdini", "nuke", "manual", "inline"):
        assert f"'{name}'" in msg
    with pytest.raises(ConfigError, match="main_queue_depth"):
        McpHttpConfig(main_queue_depth=0)
    assert McpHttpConfig.from_env({"MCP_EMBED_DISPATCHER": "qt"}).dispatcher == "qt"
