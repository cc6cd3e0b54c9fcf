"""A dispatcher needs only ``run``: ``Dispatching`` gives every optional part a no-op, once per run."""

from __future__ import annotations

from typing import Any

import httpx

from mcp_embed import McpHttpConfig, create_skill_server
from mcp_embed.dispatch import Dispatching


class OnlyRun:
    """The smallest dispatcher a host can bring: no name, no hooks, no queue."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, spec: Any, kwargs: dict[str, Any], ctx: Any) -> Any:
        self.calls += 1
        return spec.invoke(**kwargs)


def test_the_defaults() -> None:
    parts = Dispatching(OnlyRun())  # type: ignore[arg-type]
    assert (parts.name, parts.status, parts.pump, parts.handles_timeouts) == ("inline", None, None, False)
    assert parts.start() is None and parts.close() is None


def test_a_run_only_dispatcher_serves(tmp_path: Any) -> None:
    server = create_skill_server("generic", McpHttpConfig(port=0, stateless=True, json_response=True))
    only = OnlyRun()
    server.dispatcher = only  # type: ignore[assignment]

    @server.tool(timeout=5.0)  # a timeout the caller enforces: the dispatcher does not say it does
    def add(a: int, b: int) -> int:
        return a + b

    with server.start() as handle, httpx.Client() as client:
        assert handle.dispatcher == "inline"
        assert handle.pump() == 0 and handle.main_thread_status() == {}
        health = client.get(handle.local_url + "/health").json()
        assert "main_thread" not in health
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 2, "b": 3}},
        }
        r = client.post(
            handle.mcp_url(), json=call, headers={"Accept": "application/json, text/event-stream"}
        )
        assert r.json()["result"]["structuredContent"] == {"result": 5}
    assert only.calls == 1
