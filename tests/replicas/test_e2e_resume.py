"""End to end through a round-robin nginx (``e2e_helpers``): the SDK's own client loses a call's
stream mid-call and resumes it with ``Last-Event-ID`` on a different replica, which replays the
missed events from Redis and relays the rest live; every event arrives once, with the result.

The replicas run stateful with SSE answers and the ``slow_steps`` tool of ``replica_serve.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from e2e_helpers import UPSTREAM, Cluster, Replica, cluster, settle
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import ClientMessageMetadata

GUARD = 60.0  # seconds: a hang guard, never a measurement
STEPS = 6


@pytest.fixture(scope="module")
def stateful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("stateful"), tools=True) as c:
        yield c


class Traffic:
    """The client's HTTP exchanges, seen by an httpx2 response hook: which replica answered each."""

    def __init__(self, cl: Cluster) -> None:
        self.cl = cl
        self.seen: list[tuple[str, str | None, Replica]] = []  # (method, Last-Event-ID, replica)
        self.streams: list[httpx2.Response] = []  # the POSTs answered with an SSE stream

    def called_on(self) -> Replica:
        """The replica that answers the last POST answered with a stream: the tools/call."""
        return self.cl.replica_at(self.streams[-1].headers[UPSTREAM])

    async def hook(self, response: httpx2.Response) -> None:
        request = response.request
        if UPSTREAM in response.headers:
            replica = self.cl.replica_at(response.headers[UPSTREAM])
            self.seen.append((request.method, request.headers.get("last-event-id"), replica))
        sse = response.headers.get("content-type", "").startswith("text/event-stream")
        if request.method == "POST" and sse:
            self.streams.append(response)


async def _steer_away_from(cl: Cluster, busy: Replica) -> None:
    """Send /health probes through nginx until its next request goes to a replica other than ``busy``.

    nginx's round-robin takes the upstreams in their listed order; the test asserts where the
    resume really landed, so a wrong guess here fails the test instead of passing it."""
    order = cl.replicas
    async with httpx2.AsyncClient(timeout=10) as http:
        for _ in range(len(order)):
            r = await http.get(f"{cl.base}/health")
            landed = cl.replica_at(r.headers[UPSTREAM])
            if order[(order.index(landed) + 1) % len(order)] is not busy:
                return


def _slow_call() -> types.CallToolRequest:
    params = types.CallToolRequestParams(name="slow_steps", arguments={"n": STEPS, "delay": 0.3})
    return types.CallToolRequest(params=params)


def test_a_stream_cut_mid_call_resumes_on_another_replica_with_every_event_once(stateful: Cluster) -> None:
    traffic = Traffic(stateful)
    progress: list[float] = []
    tokens: list[str] = []
    cut = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        if len(progress) == 2 and not cut.is_set():
            # Cut the call's stream after two of its events, as a dropped connection would: the SDK
            # client sees the stream end without the answer and reconnects with Last-Event-ID.
            cut.set()
            await traffic.streams[-1].aclose()
            await _steer_away_from(stateful, traffic.called_on())

    async def on_token(token: str) -> None:
        tokens.append(token)

    async def main() -> types.CallToolResult:
        with anyio.fail_after(GUARD):
            async with (
                httpx2.AsyncClient(event_hooks={"response": [traffic.hook]}, timeout=30) as http,
                streamable_http_client(stateful.url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await session.send_request(
                    _slow_call(),
                    types.CallToolResult,
                    metadata=ClientMessageMetadata(on_resumption_token_update=on_token),
                    progress_callback=on_progress,
                )

    result = anyio.run(main)
    assert cut.is_set()
    assert result.content[0].text == f"{STEPS} slow steps"  # type: ignore[union-attr]
    assert progress == list(range(1, STEPS + 1)), progress  # every event, in order, none twice
    assert len(tokens) == len(set(tokens))
    resumes = [(eid, replica) for method, eid, replica in traffic.seen if method == "GET" and eid]
    assert len(resumes) == 1, traffic.seen
    (resumed_from, resumed_on) = resumes[0]
    called_on = traffic.called_on()
    assert resumed_from in tokens  # the SDK resumed from an event id it was handed
    assert resumed_on is not called_on, (called_on.name, resumed_on.name)
    settle(lambda: bool(called_on.tool_calls("slow_steps")))
    ran = {r.name: len(r.tool_calls("slow_steps")) for r in stateful.replicas}
    assert ran == {r.name: int(r is called_on) for r in stateful.replicas}  # it ran once, where it was called


def test_a_new_client_resumes_the_call_with_its_resumption_token_on_another_replica(
    stateful: Cluster,
) -> None:
    """The client itself is gone mid-call (its connections closed, nothing more sent); a new
    ``ClientSession`` on the same session id resumes with ``resumption_token``."""
    first = Traffic(stateful)
    dead = anyio.Event()
    seen: list[float] = []
    tokens: list[str] = []
    session_id: list[str] = []

    async def refuse_when_dead(request: httpx2.Request) -> None:
        if dead.is_set():  # the first client sends nothing more: no cancel, no DELETE, no reconnect
            raise httpx2.ConnectError("the first client is gone", request=request)

    async def keep_session_id(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            session_id.append(response.headers["mcp-session-id"])

    async def on_token(token: str) -> None:
        tokens.append(token)

    async def first_client() -> str:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            seen.append(value)
            if len(seen) == 2:
                dead.set()
                await first.streams[-1].aclose()
                scope.cancel()

        hooks = {"request": [refuse_when_dead], "response": [first.hook, keep_session_id]}
        with anyio.CancelScope() as scope:
            async with (
                httpx2.AsyncClient(event_hooks=hooks, timeout=30) as http,
                streamable_http_client(stateful.url, http_client=http, terminate_on_close=False) as (r, w),
                ClientSession(r, w) as session,
            ):
                init = await session.initialize()
                await session.send_request(
                    _slow_call(),
                    types.CallToolResult,
                    metadata=ClientMessageMetadata(on_resumption_token_update=on_token),
                    progress_callback=on_progress,
                )
        return init.protocol_version

    second = Traffic(stateful)
    relayed: list[float] = []

    async def collect(message: Any) -> None:
        if isinstance(message, types.ProgressNotification):
            relayed.append(message.params.progress)

    async def second_client(version: str) -> types.CallToolResult:
        headers = {"mcp-session-id": session_id[-1], "mcp-protocol-version": version}
        await _steer_away_from(stateful, first.called_on())
        async with (
            httpx2.AsyncClient(headers=headers, event_hooks={"response": [second.hook]}, timeout=30) as http,
            streamable_http_client(stateful.url, http_client=http, terminate_on_close=False) as (r, w),
            ClientSession(r, w, message_handler=collect) as session,
        ):
            resume = ClientMessageMetadata(resumption_token=tokens[-1], on_resumption_token_update=on_token)
            return await session.send_request(_slow_call(), types.CallToolResult, metadata=resume)

    async def main() -> types.CallToolResult:
        with anyio.fail_after(GUARD):
            version = await first_client()
            assert dead.is_set() and seen == [1, 2]
            return await second_client(version)

    result = anyio.run(main)
    assert result.content[0].text == f"{STEPS} slow steps"  # type: ignore[union-attr]
    assert seen + relayed == list(range(1, STEPS + 1)), (seen, relayed)
    assert len(tokens) == len(set(tokens))
    called_on = first.called_on()
    (resumed_on,) = [replica for method, eid, replica in second.seen if method == "GET" and eid]
    assert resumed_on is not called_on, (called_on.name, resumed_on.name)
