"""Any replica serves any session: servers sharing one real redis-server serve each other's
sessions (the SDK path and the fast path), keep them to their principal, end them everywhere on
``DELETE``, and resume a stream another replica is still writing.

Each "replica" is a real server in this process (its own thread and loop) on 127.0.0.1.
Timing bounds are hang guards, sized well above what the operation needs.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ACCEPT, INIT, demo_server
from mcp_embed import ApiKey, ApiKeyConfig, ServerHandle, ToolContext
from redis_helpers import RedisServer

VERSION = "2025-11-25"
ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdef01"
KEYS = ApiKeyConfig(keys=(ApiKey(id="alice", key=ALICE), ApiKey(id="bob", key=BOB)), enforce="native")


def _headers(sid: str | None = None, key: str | None = None) -> dict[str, str]:
    out = dict(ACCEPT)
    if key is not None:
        out["Authorization"] = f"Bearer {key}"
    if sid is not None:
        out |= {"Mcp-Session-Id": sid, "Mcp-Protocol-Version": VERSION}
    return out


def _call(name: str, arguments: dict[str, Any], rid: int, progress: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress is not None:
        params["_meta"] = {"progressToken": progress}
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def _answer(r: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer of a POST, whether sent as JSON or as one SSE stream."""
    assert r.status_code == 200, (r.status_code, r.text)
    if r.headers["content-type"].startswith("application/json"):
        return dict(r.json())
    events = [e for e in _events(r.text.splitlines()) if e[1]]
    return dict(json.loads(events[-1][1]))


def _events(lines: Any) -> Iterator[tuple[str | None, str]]:
    """(id, data) per SSE event of ``lines``."""
    eid: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if eid is not None or data:
                yield eid, "\n".join(data)
            eid, data = None, []
        elif line.startswith("id:"):
            eid = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def _open(h: ServerHandle, key: str | None = None) -> str:
    r = httpx.post(h.mcp_url(), json=INIT, headers=_headers(key=key), timeout=10)
    assert r.status_code == 200, r.text
    sid = r.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx.post(h.mcp_url(), json=note, headers=_headers(sid, key), timeout=10).status_code == 202
    return sid


@contextlib.contextmanager
def replicas(redis: RedisServer, count: int, **config: Any) -> Iterator[list[ServerHandle]]:
    release = threading.Event()
    handles: list[ServerHandle] = []
    try:
        for _ in range(count):
            server = demo_server(redis_url=redis.url, port=0, **config)

            @server.tool()
            def slow_steps(n: int, delay: float, ctx: ToolContext) -> str:
                """Report n progress steps, ``delay`` seconds apart."""
                for i in range(n):
                    ctx.report_progress(i + 1, n, f"step {i + 1}")
                    release.wait(delay)
                return f"{n} slow steps"

            handles.append(server.start())
        yield handles
    finally:
        for h in handles:  # first: a call still running dies with its replica, unanswered
            h.stop()
        release.set()


def _until_404(url: str, sid: str) -> int:
    """The status of a tools/list on ``url``, once it is 404 or after a bounded wait (pub/sub)."""
    status = 0
    for _ in range(50):
        status = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"}, headers=_headers(sid), timeout=10
        ).status_code
        if status == 404:
            break
        time.sleep(0.05)
    return status


def test_a_session_opened_on_one_replica_is_served_and_ended_through_the_others(
    redis_server: RedisServer,
) -> None:
    with replicas(redis_server, 3, json_response=True) as (a, b, c):
        sid = _open(a)
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        tools = _answer(httpx.post(b.mcp_url(), json=listing, headers=_headers(sid), timeout=10))
        assert "echo" in {t["name"] for t in tools["result"]["tools"]}
        # the fast path (a plain call) and the SDK path (resources/list), on B and on C
        for h in (b, c):
            r = httpx.post(
                h.mcp_url(), json=_call("echo", {"text": "hi"}, 3), headers=_headers(sid), timeout=10
            )
            assert _answer(r)["result"]["content"][0]["text"] == "hi"
            res = {"jsonrpc": "2.0", "id": 4, "method": "resources/list"}
            assert "result" in _answer(httpx.post(h.mcp_url(), json=res, headers=_headers(sid), timeout=10))
        r = httpx.post(a.mcp_url(), json=_call("add", {"a": 2, "b": 3}, 5), headers=_headers(sid), timeout=10)
        assert _answer(r)["result"]["structuredContent"]["result"] == 5
        # DELETE through B: A (which opened it) and C (which adopted it) answer 404 from then on
        assert httpx.delete(b.mcp_url(), headers=_headers(sid), timeout=10).status_code in (200, 204)
        for h in (c, a, b):
            assert _until_404(h.mcp_url(), sid) == 404
            r = httpx.post(
                h.mcp_url(), json=_call("echo", {"text": "x"}, 6), headers=_headers(sid), timeout=10
            )
            assert r.status_code == 404, r.text


def test_an_unknown_session_id_is_still_404_on_every_replica(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2, json_response=True) as (a, b):
        for h in (a, b):
            r = httpx.post(
                h.mcp_url(), json=_call("echo", {"text": "x"}, 2), headers=_headers("f" * 32), timeout=10
            )
            assert r.status_code == 404


def test_a_second_principal_cannot_use_the_session_on_another_replica(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2, json_response=True, auth=KEYS) as (a, b):
        sid = _open(a, ALICE)
        url = b.mcp_url()
        r = httpx.post(url, json=_call("echo", {"text": "bob"}, 2), headers=_headers(sid, BOB), timeout=10)
        assert r.status_code == 404, r.text
        res = {"jsonrpc": "2.0", "id": 3, "method": "resources/list"}
        assert httpx.post(url, json=res, headers=_headers(sid, BOB), timeout=10).status_code == 404
        assert httpx.delete(url, headers=_headers(sid, BOB), timeout=10).status_code == 404
        # alice's, through B, then bob again now that B holds it
        ok = httpx.post(
            url, json=_call("echo", {"text": "mine"}, 4), headers=_headers(sid, ALICE), timeout=10
        )
        assert _answer(ok)["result"]["content"][0]["text"] == "mine"
        r = httpx.post(url, json=_call("echo", {"text": "bob"}, 5), headers=_headers(sid, BOB), timeout=10)
        assert r.status_code == 404
        assert httpx.delete(url, headers=_headers(sid, ALICE), timeout=10).status_code in (200, 204)


def _cut_after_first_progress(h: ServerHandle, sid: str, body: dict[str, Any]) -> tuple[str, list[Any]]:
    """POST ``body`` on ``h`` as an SSE stream, read up to the first progress event, then drop the
    connection: (the last event id seen, the progress values seen)."""
    seen: list[Any] = []
    last: str | None = None
    with httpx.stream("POST", h.mcp_url(), json=body, headers=_headers(sid), timeout=10) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for eid, data in _events(r.iter_lines()):
            last = eid or last
            if data:
                message = json.loads(data)
                assert message.get("method") == "notifications/progress", message
                seen.append(message["params"]["progress"])
                break
    assert last is not None
    return last, seen


@pytest.mark.parametrize("where", ["another replica", "the same replica"])
def test_a_stream_cut_on_one_replica_resumes_on_another_with_every_event_once(
    redis_server: RedisServer, where: str
) -> None:
    with replicas(redis_server, 2) as (a, other):
        b = other if where == "another replica" else a
        sid = _open(a)
        body = _call("slow_steps", {"n": 5, "delay": 0.3}, 7, progress="p7")
        last, seen = _cut_after_first_progress(a, sid, body)
        started = time.monotonic()
        headers = {**_headers(sid), "Last-Event-ID": last, "Accept": "text/event-stream"}
        result = None
        with httpx.stream("GET", b.mcp_url(), headers=headers, timeout=30) as r:
            assert r.status_code == 200, r.read()
            ids = []
            for eid, data in _events(r.iter_lines()):
                if not data:
                    continue
                ids.append(eid)
                message = json.loads(data)
                if message.get("method") == "notifications/progress":
                    seen.append(message["params"]["progress"])
                else:
                    assert message["id"] == 7
                    result = message
        assert time.monotonic() - started < 20
        assert seen == [1, 2, 3, 4, 5], seen
        assert result is not None and result["result"]["content"][0]["text"] == "5 slow steps"
        assert len(ids) == len(set(ids)) and all(ids)
        # the same resume once more, after the end: everything after the cut again, then it closes
        with httpx.stream("GET", b.mcp_url(), headers=headers, timeout=30) as r:
            again = [json.loads(d) for _, d in _events(r.iter_lines()) if d]
        assert [m["params"]["progress"] for m in again[:-1]] == [2, 3, 4, 5] and again[-1]["id"] == 7


def test_a_stream_whose_replica_died_ends_with_an_error_not_a_hang(redis_server: RedisServer) -> None:
    with replicas(redis_server, 1) as (b,):
        with replicas(redis_server, 1) as (a,):
            sid = _open(a)
            last, _ = _cut_after_first_progress(a, sid, _call("slow_steps", {"n": 3, "delay": 60}, 8, "p8"))
        # A is stopped: its heartbeat lapses, and nothing will ever answer request 8
        started = time.monotonic()
        headers = {**_headers(sid), "Last-Event-ID": last, "Accept": "text/event-stream"}
        with httpx.stream("GET", b.mcp_url(), headers=headers, timeout=60) as r:
            assert r.status_code == 200
            messages = [json.loads(d) for _, d in _events(r.iter_lines()) if d]
        assert time.monotonic() - started < 30
        final = messages[-1]
        assert final["id"] == 8 and "error" in final, messages


def test_the_record_names_what_adoption_needs_and_expires_with_the_idle_timeout(
    redis_server: RedisServer,
) -> None:
    import redis

    with replicas(redis_server, 1, json_response=True, session_idle_timeout=60) as (a,):
        sid = _open(a)
        client = redis.Redis.from_url(redis_server.url)
        try:
            (key,) = client.keys(f"mcp-embed:*session:{sid}")
            record = json.loads(client.get(key) or b"{}")
            assert 0 < client.pttl(key) <= 60_000
        finally:
            client.close()
        assert record["protocol_version"] == VERSION and record["principal"] is None
        assert record["client_params"]["clientInfo"] == {"name": "t", "version": "1"}
        assert httpx.delete(a.mcp_url(), headers=_headers(sid), timeout=10).status_code in (200, 204)
        client = redis.Redis.from_url(redis_server.url)
        try:
            assert client.exists(key) == 0
        finally:
            client.close()
