"""The fast path's contract with the SDK: the private attributes it reads exist (this test fails
the day an SDK release moves them), and when they do not, the server still serves correctly."""

from __future__ import annotations

import logging
import math
import types
from typing import Any

import anyio
import httpx
import pytest
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from conftest import ACCEPT, INIT, demo_server
from mcp_embed.http import sdkseam
from mcp_embed.http.fastpath import _UNREAD, _Head, refusal


def test_the_installed_sdk_keeps_the_contract() -> None:
    manager = StreamableHTTPSessionManager(Server("contract"))
    assert sdkseam.contract_problems(manager) == []


def test_the_installed_sdk_lets_a_replica_adopt_another_ones_session() -> None:
    """Several replicas (``redis_url``): what adopting a session needs of the SDK is there."""
    manager = StreamableHTTPSessionManager(Server("contract"))
    assert sdkseam.adoption_problems(manager) == []
    lacking = types.SimpleNamespace(_server_instances={}, _session_owners={}, _task_group=None)
    assert sdkseam.adoption_problems(lacking) == [  # type: ignore[arg-type]
        "StreamableHTTPSessionManager._lifespan_state is missing",
        "StreamableHTTPSessionManager._discard_session is missing",
        "StreamableHTTPSessionManager._session_creation_lock is missing",
    ]


def test_a_moved_attribute_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    lacking = types.SimpleNamespace(_server_instances={})  # no _session_owners
    assert sdkseam.contract_problems(lacking) == [  # type: ignore[arg-type]
        "StreamableHTTPSessionManager._session_owners is not a dict"
    ]
    original = StreamableHTTPServerTransport.__init__

    def without_counter(self: Any, *args: Any, **kw: Any) -> None:
        original(self, *args, **kw)
        del self._requests_in_flight

    monkeypatch.setattr(StreamableHTTPServerTransport, "__init__", without_counter)
    manager = StreamableHTTPSessionManager(Server("contract"))
    assert sdkseam.contract_problems(manager) == [
        "StreamableHTTPServerTransport._requests_in_flight is missing or of another type"
    ]


def _answer_type(server: Any) -> str:
    with server.start() as handle, httpx.Client() as client:
        r = client.post(handle.mcp_url(), json=INIT, headers=ACCEPT)
        headers = {
            **ACCEPT,
            "mcp-session-id": r.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert client.post(handle.mcp_url(), json=note, headers=headers).status_code == 202
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x"}},
        }
        r = client.post(handle.mcp_url(), json=call, headers=headers)
        assert r.status_code == 200 and '"x"' in r.text, r.text
        return r.headers["content-type"].split(";")[0]


def test_a_broken_contract_turns_the_fast_path_off_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Stateful, SSE allowed: the fast path answers JSON, the SDK answers an event stream.
    assert _answer_type(demo_server()) == "application/json"
    monkeypatch.setattr(sdkseam, "contract_problems", lambda manager: ["X.y is missing"])
    with caplog.at_level(logging.WARNING, logger="mcp_embed"):
        assert _answer_type(demo_server()) == "text/event-stream"
    assert any(
        "the fast path is off" in r.getMessage() and "X.y is missing" in r.getMessage()
        for r in caplog.records
    )


def test_the_idle_clock_is_held_and_restarted() -> None:
    async def main() -> None:
        transport = StreamableHTTPServerTransport(mcp_session_id="s1", idle_timeout=30.0)
        transport.idle_scope = anyio.CancelScope(deadline=anyio.current_time() + 30.0)
        assert not sdkseam.session_ending(transport)
        with sdkseam.holding_idle_clock(transport):
            assert transport.idle_scope.deadline == math.inf
            with sdkseam.holding_idle_clock(transport):  # two requests in flight
                pass
            assert transport.idle_scope.deadline == math.inf  # the other one still runs
        assert 29.0 < transport.idle_scope.deadline - anyio.current_time() <= 30.0
        transport.idle_scope.cancel()
        assert sdkseam.session_ending(transport)  # expired: the SDK answers

    anyio.run(main)


JSON = _Head(accepts_json=True, content_json=True, session_id=None, version=None)
CALL = (1, "tools/call", {"name": "t", "arguments": {}})


class _Spec:
    wants_context: str | None = None
    task = "forbidden"


def test_the_one_predicate_says_why() -> None:
    spec: Any = _Spec()
    assert refusal(JSON, True, None, False) is None  # headers fine: read the body
    assert refusal(JSON, True, None, False, CALL, spec) is None  # served here
    assert refusal(JSON, True, None, False, (1, "ping", {}), None) is None
    assert (
        refusal(JSON._replace(accepts_json=False), True, None, False)
        == "the client does not send and accept JSON"
    )
    assert refusal(JSON._replace(version="1999-01-01"), True, None, False) == (
        "the protocol version is not one the SDK negotiates"
    )
    assert refusal(JSON._replace(session_id="s"), True, None, False) == "a session id in stateless mode"
    assert refusal(JSON, False, None, False) == "no live session with that id"
    assert refusal(JSON, True, None, False, None) == "not a single plain request"
    assert refusal(JSON, True, None, False, CALL, None) == "no such tool"
    ctx_spec: Any = _Spec()
    ctx_spec.wants_context = "ctx"
    assert refusal(JSON, True, None, False, CALL, ctx_spec).startswith("the tool takes a context")  # type: ignore[union-attr]
    task_spec: Any = _Spec()
    task_spec.task = "optional"
    assert refusal(JSON, True, None, False, CALL, task_spec) == "the tool may run as a task"
    progress = (1, "tools/call", {"name": "t", "_meta": {"progressToken": 1}})
    assert refusal(JSON, True, None, False, progress, spec) == "the client asked for progress"
    listed = (1, "tools/call", {"name": "t", "arguments": [1]})
    assert refusal(JSON, True, None, False, listed, spec) == "arguments are not an object"


def test_a_session_of_another_principal_or_ending_goes_to_the_sdk() -> None:
    async def main() -> None:
        transport = StreamableHTTPServerTransport(mcp_session_id="s1", idle_timeout=30.0)
        head = JSON._replace(session_id="s1")
        assert refusal(head, False, transport, True) == "the session is ending"  # never connected
        transport.idle_scope = anyio.CancelScope()
        assert refusal(head, False, transport, False) == "the session belongs to another principal"
        assert refusal(head, False, transport, True) is None
        assert refusal(head, False, transport, True, _UNREAD) is None

    anyio.run(main)
