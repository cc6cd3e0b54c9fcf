"""The gateway end to end: three instances in three processes (two maya, one blender, port=0),
listed in a real registry (files in a folder of this test), and the SDK's own client on the gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import anyio
import pytest
from gateway_helpers import (
    GUARD,
    Listener,
    Proc,
    client,
    gateway_over,
    names,
    registry_env,
    spawn_instance,
)

from mcp_embed.handle import ServerHandle
from mcp_embed.instances import open_registry
from redis_helpers import redis_server

__all__ = ["redis_server"]

TTL = 3.0
TOOLS = ("echo", "steps", "hold", "cancellations", "ask", "sample", "asked")


class Cluster(NamedTuple):
    env: dict[str, str]
    procs: list[Proc]
    urls: list[str]
    gateway: ServerHandle


# Files in a folder (this machine), or Redis keys with instances named as if on three machines.
@pytest.fixture(params=["files", "redis"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    folder, env, redis_url = registry_env(request, tmp_path, TTL)
    procs: list[Proc] = []
    urls: list[str] = []
    registry = open_registry(redis_url=redis_url, folder=folder, ttl=TTL)
    try:
        for n, (app, scene) in enumerate(
            (("maya", "shot_010.ma"), ("maya", "shot_020.ma"), ("blender", "lookdev.blend"))
        ):
            if redis_url:
                env = {**env, "MCP_EMBED_INSTANCE_HOST": f"render-0{n + 1}"}
            proc, url = spawn_instance(app, env, scene=scene)  # one after another: a known start order
            procs.append(proc)
            urls.append(url)
        with gateway_over(registry, 3) as (handle, _):
            yield Cluster(env, procs, urls, handle)
    finally:
        for proc in procs:
            proc.stop()
        registry.close()


def test_mcp_embed_instances_lists_all_three_with_their_metadata(cluster: Cluster) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mcp_embed", "instances", "--json"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=GUARD,
        check=True,
    ).stdout
    listed = json.loads(out)
    assert [(i["app_name"], i["url"], i["metadata"]["scene"]) for i in listed] == [
        ("maya", cluster.urls[0], "shot_010.ma"),
        ("maya", cluster.urls[1], "shot_020.ma"),
        ("blender", cluster.urls[2], "lookdev.blend"),
    ]


def test_every_tool_once_with_its_prefix_and_a_call_routed_to_each(cluster: Cluster) -> None:
    async def main() -> None:
        async with client(cluster.gateway.mcp_url()) as c:
            listed = [t.name for t in (await c.list_tools()).tools]
            assert len(listed) == len(set(listed))
            prefixes = ("maya-1", "maya-2", "blender-1")
            assert set(listed) == {f"{p}__{t}" for p in prefixes for t in TOOLS} | {"list_instances"}
            for prefix, app in zip(prefixes, ("maya", "maya", "blender"), strict=True):
                result = await c.call_tool(f"{prefix}__echo", {"text": prefix})
                assert result.content[0].text == f"{app}:{prefix}"
            behind = (await c.call_tool("list_instances", {})).structured_content["result"]
            assert [(i["prefix"], i["url"]) for i in behind] == list(zip(prefixes, cluster.urls, strict=True))
            assert behind[1]["metadata"] == {"scene": "shot_020.ma"}
            if "MCP_EMBED_REDIS_URL" in cluster.env:
                assert [i["host"] for i in behind] == ["render-01", "render-02", "render-03"]

    anyio.run(main)


def test_progress_and_cancellation_cross_the_gateway(cluster: Cluster) -> None:
    async def main() -> None:
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async with client(cluster.gateway.mcp_url()) as c:
            done = await c.call_tool("blender-1__steps", {"n": 3}, progress_callback=on_progress)
            assert done.structured_content == {"result": 3}
            assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]

            holding = anyio.Event()

            async def on_hold(progress: float, total: float | None, message: str | None) -> None:
                holding.set()  # the instance's tool runs now

            with anyio.move_on_after(GUARD):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(lambda: c.call_tool("maya-2__hold", {}, progress_callback=on_hold))
                    await holding.wait()
                    tg.cancel_scope.cancel()  # the SDK client sends notifications/cancelled
            assert holding.is_set()
            await _until(c, "maya-2__cancellations", lambda n: n == 1)
            other = await c.call_tool("maya-1__cancellations", {})
            assert other.structured_content == {"result": 0}

    anyio.run(main)


async def _until(c: object, tool: str, ok: object) -> None:
    with anyio.fail_after(GUARD):
        while True:
            result = await c.call_tool(tool, {})  # type: ignore[attr-defined]
            if ok(result.structured_content["result"]):  # type: ignore[operator]
                return
            await anyio.sleep(0.05)


def test_kill_9_of_an_instance_removes_its_tools_and_tells_clients(cluster: Cluster) -> None:
    listener = Listener()

    async def main() -> None:
        async with client(cluster.gateway.mcp_url(), listener) as c:
            assert "blender-1__echo" in await names(c)
            cluster.procs[2].kill9()
            # Within the TTL (Redis: the key expires), or sooner (files: a dead pid is never listed).
            with anyio.fail_after(TTL + GUARD):
                while not listener.count("notifications/tools/list_changed"):
                    await anyio.sleep(0.05)
            now = await names(c)
            assert not any(n.startswith("blender-1__") for n in now)
            assert {"maya-1__echo", "maya-2__echo"} <= now

    anyio.run(main)
