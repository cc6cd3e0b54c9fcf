"""Resumable streams: a tool closes its SSE stream mid-call and the SDK client resumes it.

The server stores every event of a stream (``InMemoryEventStore`` by default, or the user's
``EventStore``), sends a priming event and a ``retry`` interval, and replays what the client
missed when it reconnects with ``Last-Event-ID``. Nothing may be lost on the way.
"""

from __future__ import annotations

from typing import Any

import anyio

from conftest import sdk_client
from mcp_embed import InMemoryEventStore, McpHttpConfig, ToolContext, create_skill_server

STEPS = 5


class CountingStore(InMemoryEventStore):
    """The default store, counting what it is asked to do (a user-supplied EventStore)."""

    def __init__(self) -> None:
        super().__init__(256)
        self.stored = 0
        self.replays = 0

    async def store_event(self, stream_id: str, message: Any) -> str:
        self.stored += 1
        return await super().store_event(stream_id, message)

    async def replay_events_after(self, last_event_id: str, send_callback: Any) -> str | None:
        self.replays += 1
        return await super().replay_events_after(last_event_id, send_callback)


def _server(store: CountingStore | None, **config: Any) -> Any:
    server = create_skill_server(
        "resume", McpHttpConfig(port=0, retry_interval_ms=50, **config), event_store=store
    )

    @server.tool()
    def interrupted(ctx: ToolContext) -> str:
        """Reports progress, drops its stream half-way, then reports the rest."""
        for i in range(STEPS):
            ctx.report_progress(i + 1, 2 * STEPS, f"before {i + 1}")
        ctx.close_sse_stream()
        for i in range(STEPS, 2 * STEPS):
            ctx.report_progress(i + 1, 2 * STEPS, f"after {i + 1}")
        return "finished after the reconnect"

    @server.tool()
    async def interrupted_async(ctx: ToolContext) -> str:
        """The same, as a coroutine."""
        ctx.report_progress(1, 2)
        ctx.close_sse_stream()
        await anyio.sleep(0)
        ctx.report_progress(2, 2)
        return "async finished"

    return server


def _call(url: str, tool: str) -> tuple[Any, list[tuple[float, str | None]]]:
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async def main() -> Any:
        async with sdk_client(url) as client:
            return await client.call_tool(tool, {}, progress_callback=on_progress)

    return anyio.run(main), seen


def test_a_closed_stream_resumes_with_every_progress_notification_and_the_result() -> None:
    store = CountingStore()
    with _server(store).start() as handle:
        result, seen = _call(handle.mcp_url(), "interrupted")
    assert not result.is_error
    assert result.content[0].text == "finished after the reconnect"
    assert [p for p, _ in seen] == list(range(1, 2 * STEPS + 1))
    assert seen[STEPS][1] == f"after {STEPS + 1}"
    # The user's store was the one used, and the client really resumed from it.
    assert store.stored >= 2 * STEPS + 2  # priming event, progress, result
    assert store.replays >= 1


def test_async_tools_resume_too() -> None:
    store = CountingStore()
    with _server(store).start() as handle:
        result, seen = _call(handle.mcp_url(), "interrupted_async")
    assert result.content[0].text == "async finished"
    assert [p for p, _ in seen] == [1, 2]
    assert store.replays >= 1


def test_the_built_in_store_is_on_by_default_in_stateful_mode() -> None:
    with _server(None).start() as handle:
        result, seen = _call(handle.mcp_url(), "interrupted")
    assert result.content[0].text == "finished after the reconnect"
    assert len(seen) == 2 * STEPS


def test_stateless_mode_has_no_store_and_close_is_a_no_op() -> None:
    store = CountingStore()
    with _server(store, stateless=True).start() as handle:
        result, seen = _call(handle.mcp_url(), "interrupted")
    assert result.content[0].text == "finished after the reconnect"
    assert len(seen) == 2 * STEPS
    assert store.stored == 0


def test_an_empty_store_is_still_a_store() -> None:
    # The SDK tests ``if event_store``: an empty store must not read as "no store".
    assert InMemoryEventStore(4)
    assert len(InMemoryEventStore(4)) == 0


def test_replay_never_crosses_sessions() -> None:
    # Two clients, same request ids (every client counts from 0), both streams closed mid-call and
    # resumed from the one server-wide store: each must get its own events and result only.
    import threading

    server = create_skill_server("two", McpHttpConfig(port=0, retry_interval_ms=500))
    both_closed = threading.Barrier(2, timeout=30)

    @server.tool()
    def who(name: str, ctx: ToolContext) -> str:
        """Closes its stream, then reports once both calls have closed theirs."""
        ctx.report_progress(1, 2, f"{name} before")
        ctx.close_sse_stream()
        both_closed.wait()
        ctx.report_progress(2, 2, f"{name} after")
        return f"result for {name}"

    with server.start() as handle:

        async def one(name: str, out: dict[str, Any]) -> None:
            seen: list[str | None] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(message)

            async with sdk_client(handle.mcp_url()) as client:
                result = await client.call_tool("who", {"name": name}, progress_callback=on_progress)
            out[name] = (result.content[0].text, seen)

        async def main() -> dict[str, Any]:
            out: dict[str, Any] = {}
            async with anyio.create_task_group() as tg:
                tg.start_soon(one, "alice", out)
                tg.start_soon(one, "bob", out)
            return out

        out = anyio.run(main)
    assert out["alice"] == ("result for alice", ["alice before", "alice after"])
    assert out["bob"] == ("result for bob", ["bob before", "bob after"])
