"""SEP-2663 tasks (``io.modelcontextprotocol/tasks``) over real HTTP.

The SDK's own client drives a task end to end through a small client extension that claims
``resultType: "task"`` and polls ``tasks/get``; raw 2026-07-28 JSON-RPC POSTs cover the wire
details the client hides (capability gating, headers, partial answers, cancellation).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim

from conftest import ACCEPT, INIT
from mcp_embed import (
    ElicitInput,
    InMemoryTaskStore,
    InputRequired,
    McpError,
    McpHttpConfig,
    ServerHandle,
    SkillServer,
    Task,
    TaskStore,
    ToolContext,
    create_skill_server,
)
from task_wire import TASKS, CreatedTask, GetTask, GetTaskParams, TaskState, UpdateTask, UpdateTaskParams

MODERN = "2026-07-28"
WITH_TASKS = {"extensions": {TASKS: {}}, "elicitation": {}}
NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
OK = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
GUARD = 30.0  # seconds before a wait gives up: a hang guard, never an assertion on timing


class Gates:
    """Events the tests open to let a tool finish, and what the tools saw."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.cancelled = threading.Event()


def build(gates: Gates, store: TaskStore | None = None, **config: Any) -> SkillServer:
    server = create_skill_server("tasks", McpHttpConfig(port=0, **config), task_store=store)

    @server.tool()
    def greet(name: str) -> str:
        """Never a task."""
        return f"Hello, {name}!"

    @server.tool(task="optional")
    def quick() -> str:
        """Done at once: answers like a plain call."""
        return "quick"

    @server.tool(task="optional")
    def gated(ctx: ToolContext) -> str:
        """Hands over its task at once, then waits for the test."""
        ctx.report_progress(0, 1, "started")
        while not gates.release.wait(0.01):
            if ctx.cancelled:
                gates.cancelled.set()
                return "stopped"
        return "released"

    @server.tool(task="optional")
    def silent() -> str:
        """Reports nothing: becomes a task only after task_handoff."""
        gates.release.wait(GUARD)
        return "silent done"

    @server.tool(task="optional")
    async def ask(ctx: ToolContext) -> str:
        """Asks the user inside its task."""
        answer = await ctx.elicit("Your name?", NAME)
        return f"Hello, {(answer.content or {}).get('name')}"

    @server.tool(task="optional")
    async def two(ctx: ToolContext) -> str:
        """Asks two questions at once."""
        first, second = await anyio_gather(ctx.elicit("First?", NAME), ctx.elicit("Second?", NAME))
        return f"{(first.content or {}).get('name')} and {(second.content or {}).get('name')}"

    @server.tool(task="optional")
    def confirm(ctx: ToolContext) -> str | InputRequired:
        """Returns InputRequired inside its task, twice with the same key."""
        ctx.report_progress(0, 1, "confirming")
        rounds = int(ctx.request_state or 0)
        if rounds < 2:
            return InputRequired({"ok": ElicitInput(f"Sure ({rounds + 1})?", OK)}, state=str(rounds + 1))
        answer = (ctx.input_responses or {}).get("ok") or {}
        return f"confirmed={(answer.get('content') or {}).get('ok')}"

    @server.tool(task="required")
    def preflight(ctx: ToolContext) -> str | InputRequired:
        """A SEP-2322 round on the request, then a task."""
        answer = (ctx.input_responses or {}).get("user")
        if answer is None:
            return InputRequired({"user": ElicitInput("Who?", NAME)})
        return f"task for {(answer.get('content') or {}).get('name')}"

    @server.tool(task="optional")
    def boom(ctx: ToolContext) -> str:
        """Fails its task with a JSON-RPC error."""
        ctx.report_progress(0, 1, "about to fail")
        raise McpError(-32000, "the render farm is down", {"farm": "a"})

    return server


async def anyio_gather(*aws: Any) -> list[Any]:
    results: list[Any] = [None] * len(aws)

    async def one(i: int, aw: Any) -> None:
        results[i] = await aw

    async with anyio.create_task_group() as tg:
        for i, aw in enumerate(aws):
            tg.start_soon(one, i, aw)
    return results


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def served(gates: Gates) -> Iterator[ServerHandle]:
    handle = build(gates).start()
    try:
        yield handle
    finally:
        gates.release.set()
        handle.stop()


# -- raw 2026-07-28 JSON-RPC ---------------------------------------------------------------------


def post(url: str, method: str, params: dict[str, Any], *, caps: Any = WITH_TASKS, **headers: str) -> Any:
    """One 2026-07-28 request; returns ``(HTTP status, JSON-RPC reply)``."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": meta}}
    hdrs = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    name = params.get("name", params.get("taskId"))
    if isinstance(name, str):
        hdrs["Mcp-Name"] = name
    hdrs.update(headers)
    r = httpx.post(url, json=body, headers=hdrs, timeout=GUARD)
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        return r.status_code, sse_data(r.text)[-1]
    return r.status_code, r.json()


def sse_data(text: str) -> list[Any]:
    """The JSON messages of an SSE body (the priming event has no data)."""
    return [json.loads(x[5:]) for x in text.splitlines() if x.startswith("data:") and x[5:].strip()]


def result(url: str, method: str, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
    status, reply = post(url, method, params, **kw)
    assert status == 200 and "result" in reply, reply
    out: dict[str, Any] = reply["result"]
    return out


def error(url: str, method: str, params: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    status, reply = post(url, method, params, **kw)
    assert "error" in reply, reply
    return status, reply["error"]


def wait_for(url: str, task_id: str, *statuses: str, keys: int = 0, **kw: Any) -> dict[str, Any]:
    deadline = time.monotonic() + GUARD
    while True:
        task = result(url, "tasks/get", {"taskId": task_id}, **kw)
        if task["status"] in statuses and len(task.get("inputRequests", {})) >= keys:
            return task
        assert time.monotonic() < deadline, f"task stayed {task['status']}: {task}"
        time.sleep(0.02)


# -- the SDK client, through a client extension that polls the task --------------------------------


class TaskPoller(ClientExtension):
    """Polls a task to its end, answering its elicitations with ``name``."""

    identifier = TASKS

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self.resolve)]

    async def resolve(self, created: CreatedTask, ctx: ClaimContext) -> types.CallToolResult:
        self.seen.append(created.status)
        with anyio.fail_after(GUARD):
            while True:
                params = GetTaskParams(task_id=created.task_id)
                state = await ctx.session.send_request(GetTask(params=params), TaskState)
                self.seen.append(state.status)
                if state.status == "completed":
                    assert state.result is not None
                    return types.CallToolResult.model_validate(state.result)
                if state.status == "input_required":
                    yes = {"action": "accept", "content": {"name": self.name}}
                    answers = {k: yes for k in state.input_requests or {}}
                    update = UpdateTaskParams(task_id=created.task_id, input_responses=answers)
                    await ctx.session.send_request(UpdateTask(params=update), types.EmptyResult)
                assert state.status in ("working", "input_required"), state
                await anyio.sleep(0.02)


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
def test_the_sdk_client_gets_a_task_answers_its_question_and_reads_the_result(
    gates: Gates, spawn_mode: str, stateless: bool
) -> None:
    handle = build(gates, spawn_mode=spawn_mode, stateless=stateless).start()
    poller = TaskPoller("Ada")

    async def main() -> None:
        async with Client(handle.mcp_url(), mode="auto", extensions=[poller]) as c:
            assert c.protocol_version == MODERN
            r = await c.call_tool("ask", {})
            assert r.content[0].text == "Hello, Ada"
            assert "input_required" in poller.seen and poller.seen[-1] == "completed"
            plain = await c.call_tool("greet", {"name": "Bo"})
            assert plain.content[0].text == "Hello, Bo!"

    try:
        anyio.run(main)
    finally:
        handle.stop()


# -- the wire --------------------------------------------------------------------------------------


def test_discover_advertises_the_extension_and_the_2025_handshake_does_not(served: ServerHandle) -> None:
    url = served.mcp_url()
    caps = result(url, "server/discover", {})["capabilities"]
    assert caps["extensions"] == {TASKS: {}} and "tasks" not in caps
    init = httpx.post(url, json=INIT, headers=ACCEPT, timeout=GUARD)
    reply = sse_data(init.text)[-1] if "event-stream" in init.headers["content-type"] else init.json()
    assert TASKS not in (reply["result"]["capabilities"].get("extensions") or {})


def test_a_task_carries_its_status_progress_and_result(served: ServerHandle, gates: Gates) -> None:
    url = served.mcp_url()
    created = result(url, "tools/call", {"name": "gated", "arguments": {}})
    assert created["resultType"] == "task" and created["status"] == "working"
    assert {"result", "error", "inputRequests", "task", "ttl", "pollInterval"}.isdisjoint(created)
    assert created["ttlMs"] == 3_600_000 and created["pollIntervalMs"] == 1000
    assert created["createdAt"].endswith("Z") and created["lastUpdatedAt"].endswith("Z")
    task = result(url, "tasks/get", {"taskId": created["taskId"]})
    assert task["resultType"] == "complete" and task["status"] == "working"
    assert task["statusMessage"] == "started" and "result" not in task
    gates.release.set()
    done = wait_for(url, created["taskId"], "completed")
    assert done["result"]["content"] == [{"type": "text", "text": "released"}]
    assert not done["result"]["isError"]
    # Cancelling a finished task is the same empty acknowledgement, and changes nothing.
    ack = result(url, "tasks/cancel", {"taskId": created["taskId"]})
    assert set(ack) <= {"resultType", "_meta"} and ack["resultType"] == "complete"
    assert result(url, "tasks/get", {"taskId": created["taskId"]})["status"] == "completed"


def test_a_fast_tool_answers_plainly(served: ServerHandle) -> None:
    r = result(served.mcp_url(), "tools/call", {"name": "quick", "arguments": {}})
    assert r["resultType"] == "complete" and r["content"][0]["text"] == "quick"


def test_a_silent_tool_is_handed_over_after_task_handoff(gates: Gates, spawn_mode: str) -> None:
    # The task_* settings are config: the subprocess child honours them as the thread does.
    config = {"task_handoff": 0.05, "task_ttl": 90.0, "task_poll_interval": 0.25}
    handle = build(gates, spawn_mode=spawn_mode, **config).start()
    try:
        url = handle.mcp_url()
        created = result(url, "tools/call", {"name": "silent", "arguments": {}})
        assert created["resultType"] == "task"  # the tool is still blocked on gates.release
        assert (created["ttlMs"], created["pollIntervalMs"]) == (90_000, 250)
        gates.release.set()
        done = wait_for(url, created["taskId"], "completed")
        assert done["result"]["content"][0]["text"] == "silent done"
    finally:
        gates.release.set()
        handle.stop()


def test_cancel_marks_the_task_cancelled_and_tells_the_tool(served: ServerHandle, gates: Gates) -> None:
    url = served.mcp_url()
    tid = result(url, "tools/call", {"name": "gated", "arguments": {}})["taskId"]
    ack = result(url, "tasks/cancel", {"taskId": tid})
    assert set(ack) <= {"resultType", "_meta"}
    assert result(url, "tasks/get", {"taskId": tid})["status"] == "cancelled"
    assert gates.cancelled.wait(GUARD), "the tool never saw ctx.cancelled"


def test_questions_park_the_task_until_tasks_update_answers_them_all(served: ServerHandle) -> None:
    url = served.mcp_url()
    tid = result(url, "tools/call", {"name": "two", "arguments": {}})["taskId"]
    parked = wait_for(url, tid, "input_required", keys=2)
    first, second = sorted(parked["inputRequests"])
    assert parked["inputRequests"][first]["method"] == "elicitation/create"
    answer = {"action": "accept", "content": {"name": "A"}}
    ack = result(url, "tasks/update", {"taskId": tid, "inputResponses": {first: answer, "nope": {"x": 1}}})
    assert set(ack) <= {"resultType", "_meta"}
    still = result(url, "tasks/get", {"taskId": tid})
    assert still["status"] == "input_required" and list(still["inputRequests"]) == [second]
    answer = {"action": "accept", "content": {"name": "B"}}
    result(url, "tasks/update", {"taskId": tid, "inputResponses": {second: answer}})
    assert wait_for(url, tid, "completed")["result"]["content"][0]["text"] in ("A and B", "B and A")


def test_input_required_inside_a_task_is_asked_through_the_task_with_fresh_keys(served: ServerHandle) -> None:
    url = served.mcp_url()
    tid = result(url, "tools/call", {"name": "confirm", "arguments": {}})["taskId"]
    keys = []
    for _ in range(2):
        parked = wait_for(url, tid, "input_required", keys=1)
        (key,) = parked["inputRequests"]
        keys.append(key)
        yes = {"action": "accept", "content": {"ok": True}}
        result(url, "tasks/update", {"taskId": tid, "inputResponses": {key: yes}})
        deadline = time.monotonic() + GUARD
        while key in result(url, "tasks/get", {"taskId": tid}).get("inputRequests", {}):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert keys[0] == "ok" and keys[1] != "ok"  # a key is never reused within one task
    assert wait_for(url, tid, "completed")["result"]["content"][0]["text"] == "confirmed=True"


def test_a_sep_2322_round_comes_before_the_task(served: ServerHandle) -> None:
    url = served.mcp_url()
    first = result(url, "tools/call", {"name": "preflight", "arguments": {}})
    assert first["resultType"] == "input_required" and "taskId" not in first
    answers = {"user": {"action": "accept", "content": {"name": "Cy"}}}
    params: dict[str, Any] = {"name": "preflight", "arguments": {}, "inputResponses": answers}
    if "requestState" in first:
        params["requestState"] = first["requestState"]
    second = result(url, "tools/call", params)
    assert second["resultType"] == "task" and "requestState" not in second and "inputRequests" not in second
    done = wait_for(url, second["taskId"], "completed")
    assert done["result"]["content"][0]["text"] == "task for Cy"


def test_a_protocol_error_fails_the_task(served: ServerHandle) -> None:
    url = served.mcp_url()
    tid = result(url, "tools/call", {"name": "boom", "arguments": {}})["taskId"]
    failed = wait_for(url, tid, "failed")
    assert failed["error"] == {"code": -32000, "message": "the render farm is down", "data": {"farm": "a"}}
    assert "result" not in failed


def test_without_the_extension_no_task_is_made_and_tasks_methods_say_why(served: ServerHandle) -> None:
    url = served.mcp_url()
    plain = result(url, "tools/call", {"name": "quick", "arguments": {}}, caps={})
    assert plain["resultType"] == "complete"
    status, err = error(url, "tools/call", {"name": "preflight", "arguments": {}}, caps={})
    assert status == 400 and err["code"] == -32021
    assert err["data"] == {"requiredCapabilities": {"extensions": {TASKS: {}}}}
    for method in ("tasks/get", "tasks/update", "tasks/cancel"):
        params: dict[str, Any] = {"taskId": "x"}
        if method == "tasks/update":
            params["inputResponses"] = {}
        assert error(url, method, params, caps={})[1]["code"] == -32021
    # Declared, but unknown or removed: -32602 and -32601.
    assert error(url, "tasks/get", {"taskId": "no-such-task"})[1]["code"] == -32602
    assert error(url, "tasks/result", {"taskId": "x"})[1]["code"] == -32601
    assert error(url, "tasks/list", {})[1]["code"] == -32601


def test_a_legacy_task_param_does_not_make_a_task(served: ServerHandle) -> None:
    params = {"name": "greet", "arguments": {"name": "Di"}, "task": {"ttl": 60000}}
    r = result(served.mcp_url(), "tools/call", params)
    assert r["resultType"] == "complete" and r["content"][0]["text"] == "Hello, Di!"


def test_mcp_name_must_name_the_task(served: ServerHandle) -> None:
    url = served.mcp_url()
    tid = result(url, "tools/call", {"name": "gated", "arguments": {}})["taskId"]
    status, err = error(url, "tasks/get", {"taskId": tid}, **{"Mcp-Name": "someone-else"})
    assert status == 400 and err["code"] == -32020


def test_another_principal_cannot_see_a_task(gates: Gates) -> None:
    handle = build(gates, trusted_proxies=("127.0.0.1",)).start()
    try:
        url = handle.mcp_url()
        call = {"name": "gated", "arguments": {}}
        tid = result(url, "tools/call", call, **{"X-User-Id": "alice"})["taskId"]
        assert error(url, "tasks/get", {"taskId": tid}, **{"X-User-Id": "bob"})[1]["code"] == -32602
        assert error(url, "tasks/cancel", {"taskId": tid}, **{"X-User-Id": "bob"})[1]["code"] == -32602
        assert result(url, "tasks/get", {"taskId": tid}, **{"X-User-Id": "alice"})["status"] == "working"
    finally:
        gates.release.set()
        handle.stop()


def test_the_2025_wire_runs_task_tools_inline_or_refuses_them(served: ServerHandle) -> None:
    async def main() -> None:
        from conftest import sdk_client

        async with sdk_client(served.mcp_url()) as c:
            assert (await c.call_tool("quick", {})).content[0].text == "quick"
            with pytest.raises(Exception) as err:
                await c.call_tool("preflight", {})
            assert getattr(err.value, "code", None) == -32021

    anyio.run(main)


# -- the store -------------------------------------------------------------------------------------


class RecordingStore(InMemoryTaskStore):
    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[str] = []

    async def save(self, task: Task) -> None:
        self.statuses.append(task.status)
        await super().save(task)


def test_a_custom_store_sees_every_change(gates: Gates) -> None:
    store = RecordingStore()
    handle = build(gates, store=store).start()
    try:
        url = handle.mcp_url()
        tid = result(url, "tools/call", {"name": "ask", "arguments": {}})["taskId"]
        key = next(iter(wait_for(url, tid, "input_required", keys=1)["inputRequests"]))
        answer = {"action": "accept", "content": {"name": "Ed"}}
        result(url, "tasks/update", {"taskId": tid, "inputResponses": {key: answer}})
        wait_for(url, tid, "completed")
    finally:
        handle.stop()
    assert store.statuses[0] == "input_required" and store.statuses[-1] == "completed"
    assert "working" in store.statuses


def test_the_in_memory_store_is_bounded() -> None:
    async def main() -> None:
        store = InMemoryTaskStore(max_tasks=2)
        await store.save(Task("a", "t"))
        await store.save(Task("b", "t"))
        with pytest.raises(OverflowError):
            await store.save(Task("c", "t"))  # both others still running
        await store.save(Task("a", "t", status="completed"))  # an update is always accepted
        await store.save(Task("c", "t"))  # evicts the oldest finished task
        assert await store.load("a") is None and await store.load("c") is not None
        expired = Task("d", "t", created_at=100.0, ttl=1.0)
        assert expired.expired(now=101.0) and not expired.expired(now=100.5)
        assert expired.to_wire()["ttlMs"] == 1000 and Task("e", "t").to_wire()["ttlMs"] is None

    anyio.run(main)


def test_task_support_is_checked_at_registration() -> None:
    server = create_skill_server("tasks")
    with pytest.raises(ValueError, match="task must be"):
        server.add_tool(lambda: "x", name="x", task="sometimes")  # type: ignore[arg-type]


# -- a skill tool as a task (tools.yaml ``task:``) -----------------------------------------------------


def test_a_skill_tool_declared_task_optional_runs_as_a_task(tmp_path: Any, spawn_mode: str) -> None:
    from mcp_embed import McpHttpConfig, create_skill_server

    folder = tmp_path / "root" / "render-kit"
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text("---\nname: render-kit\ndescription: Renders.\n---\n", encoding="utf-8")
    (folder / "scripts" / "render.py").write_text(
        "def render(frames: int, ctx: 'ToolContext') -> str:\n"
        '    """Render some frames."""\n'
        "    ctx.report_progress(1, frames, 'first frame')\n"
        "    return f'{frames} frames'\n",
        encoding="utf-8",
    )
    entry = "  - name: {}\n    function: render\n    source_file: scripts/render.py\n"
    tools_yaml = "tools:\n" + entry.format("render") + "    task: optional\n" + entry.format("quick")
    (folder / "tools.yaml").write_text(tools_yaml, encoding="utf-8")
    config = McpHttpConfig(port=0, register=False, enable_file_logging=False, spawn_mode=spawn_mode)
    with create_skill_server("t", config, skill_paths=[tmp_path / "root"]).start() as handle:
        url = handle.mcp_url()
        created = result(url, "tools/call", {"name": "render_kit__render", "arguments": {"frames": 3}})
        assert created["resultType"] == "task", created
        done = wait_for(url, created["taskId"], "completed")
        assert done["result"]["content"][0]["text"] == "3 frames"
        plain = result(url, "tools/call", {"name": "render_kit__quick", "arguments": {"frames": 2}})
        assert plain["resultType"] == "complete" and plain["content"][0]["text"] == "2 frames"
