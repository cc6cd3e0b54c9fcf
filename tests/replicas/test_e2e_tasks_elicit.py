"""End to end through a round-robin nginx (``e2e_helpers``), in stateless mode, with the SDK's own
client: a SEP-2663 task created through one replica is finished and fetched through another, and
an elicitation raised on one replica is answered through another and the tool completes.

The replicas run ``--stateless`` with SSE answers and the tools of ``replica_serve.py``; nginx's
``X-Upstream`` tells which replica answered each request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from e2e_helpers import UPSTREAM, Cluster, Replica, cluster, settle
from mcp.client import Client
from mcp.client.context import ClientRequestContext
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from task_wire import TASKS, CreatedTask, GetTask, GetTaskParams, TaskState

GUARD = 60.0  # seconds: a hang guard, never a measurement


@pytest.fixture(scope="module")
def stateless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("stateless-sse"), "--stateless", tools=True) as c:
        yield c


class Traffic:
    """Which replica answered each request (an httpx2 response hook): (method, body, replica)."""

    def __init__(self, cl: Cluster) -> None:
        self.cl = cl
        self.seen: list[tuple[str | None, dict[str, Any], Replica]] = []

    async def hook(self, response: httpx2.Response) -> None:
        request = response.request
        if request.method != "POST" or UPSTREAM not in response.headers:
            return
        body = json.loads(request.content or b"{}")
        self.seen.append((body.get("method"), body, self.cl.replica_at(response.headers[UPSTREAM])))

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(event_hooks={"response": [self.hook]}, timeout=30)


async def _steer_away_from(cl: Cluster, busy: Replica) -> None:
    """/health probes until nginx's next request goes to a replica other than ``busy`` (its
    round-robin takes the upstreams in order; the tests assert where requests really went)."""
    order = cl.replicas
    async with httpx2.AsyncClient(timeout=10) as http:
        for _ in range(len(order)):
            landed = cl.replica_at((await http.get(f"{cl.base}/health")).headers[UPSTREAM])
            if order[(order.index(landed) + 1) % len(order)] is not busy:
                return


# -- a task created through A, finished and fetched through B ---------------------------------------


class TaskPoller(ClientExtension):
    """Claims ``resultType: "task"`` and polls ``tasks/get`` until a replica other than the one
    that created the task answers ``completed``; records each poll's status and replica."""

    identifier = TASKS

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.polls: list[tuple[str, Replica]] = []
        self.created_on: Replica | None = None

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self.resolve)]

    async def resolve(self, created: CreatedTask, ctx: ClaimContext) -> types.CallToolResult:
        self.created_on = self.traffic.seen[-1][2]
        assert self.traffic.seen[-1][0] == "tools/call" and created.status == "working"
        for _ in range(int(GUARD / 0.05)):
            state = await ctx.session.send_request(
                GetTask(params=GetTaskParams(task_id=created.task_id)), TaskState
            )
            self.polls.append((state.status, self.traffic.seen[-1][2]))
            if state.status == "completed" and self.polls[-1][1] is not self.created_on:
                assert state.result is not None
                return types.CallToolResult.model_validate(state.result)
            assert state.status in ("working", "completed"), state
            await anyio.sleep(0.05)
        raise AssertionError(f"the task never completed elsewhere: {self.polls}")


def test_a_task_created_through_one_replica_is_finished_and_fetched_through_another(
    stateless: Cluster,
) -> None:
    traffic = Traffic(stateless)
    poller = TaskPoller(traffic)

    async def main() -> types.CallToolResult:
        with anyio.fail_after(GUARD):
            async with (
                traffic.client() as http,
                Client(streamable_http_client(stateless.url, http_client=http), extensions=[poller]) as c,
            ):
                assert c.protocol_version == "2026-07-28"
                return await c.call_tool("long_job", {"seconds": 1.0})

    result = anyio.run(main)
    assert result.content[0].text == "worked 1.0 s"  # type: ignore[union-attr]
    created_on = poller.created_on
    assert created_on is not None
    working_elsewhere = {r.name for status, r in poller.polls if status == "working" and r is not created_on}
    assert working_elsewhere, poller.polls  # other replicas read the running task from Redis too
    assert poller.polls[-1][0] == "completed" and poller.polls[-1][1] is not created_on
    settle(lambda: bool(created_on.tool_calls("long_job")))
    ran = {r.name: len(r.tool_calls("long_job")) for r in stateless.replicas}
    assert ran == {r.name: int(r is created_on) for r in stateless.replicas}  # it ran once, where created


# -- an elicitation raised on A, answered through B --------------------------------------------------


def test_an_elicitation_raised_on_one_replica_is_answered_through_another(stateless: Cluster) -> None:
    traffic = Traffic(stateless)
    asked: list[str] = []

    async def answer(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        called_on = [r for method, _, r in traffic.seen if method == "tools/call"][-1]
        await _steer_away_from(stateless, called_on)  # so the answer's POST lands elsewhere
        return types.ElicitResult(action="accept", content={"name": "ada"})

    async def main() -> types.CallToolResult:
        with anyio.fail_after(GUARD):
            async with (
                traffic.client() as http,
                streamable_http_client(stateless.url, http_client=http) as (read, write),
                ClientSession(read, write, elicitation_callback=answer) as session,
            ):
                await session.initialize()
                return await session.call_tool("ask", {})

    result = anyio.run(main)
    assert asked == ["name?"]
    assert json.loads(result.content[0].text) == {"action": "accept", "content": {"name": "ada"}}  # type: ignore[union-attr]
    (called_on,) = [r for method, _, r in traffic.seen if method == "tools/call"]
    answers = [(body, r) for method, body, r in traffic.seen if method is None and "result" in body]
    assert len(answers) == 1, traffic.seen
    assert answers[0][0]["result"]["action"] == "accept"
    assert answers[0][1] is not called_on, (called_on.name, answers[0][1].name)
    settle(lambda: bool(called_on.tool_calls("ask")))
    ran = {r.name: len(r.tool_calls("ask")) for r in stateless.replicas}
    assert ran == {r.name: int(r is called_on) for r in stateless.replicas}
