"""Resources and prompts through the gateway, end to end: two Mayas in two processes whose
resource ``app://scene/current``, template ``app://shots/{name}`` and prompt ``review`` have the
same names, listed in a real registry (files, or Redis), and the SDK's own client on the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import pytest
from gateway_helpers import (
    GUARD,
    Listener,
    Proc,
    client,
    gateway_over,
    listening,
    registry_env,
    spawn_instance,
)
from mcp.shared.exceptions import MCPError

from mcp_embed.gateway import Gateway
from mcp_embed.handle import ServerHandle
from mcp_embed.instances import open_registry
from redis_helpers import redis_server

__all__ = ["redis_server"]

TTL = 3.0
SCENES = ("shot_010.ma", "shot_020.ma")
CURRENT = "app://scene/current"


def uri(prefix: str, original: str) -> str:
    return f"mcp-embed+gateway://{prefix}/{original}"


class Pair(NamedTuple):
    procs: list[Proc]
    gateway: ServerHandle
    front: Gateway


@pytest.fixture(params=["files", "redis"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    folder, env, redis_url = registry_env(request, tmp_path, TTL)
    procs: list[Proc] = []
    registry = open_registry(redis_url=redis_url, folder=folder, ttl=TTL)
    try:
        for scene in SCENES:  # one after another: maya-1 has shot_010, maya-2 shot_020
            procs.append(spawn_instance("maya", env, scene=scene)[0])
        with gateway_over(registry, 2) as (handle, gateway):
            yield Pair(procs, handle, gateway)
    finally:
        for proc in procs:
            proc.stop()
        registry.close()


def _pid(proc: Proc) -> int:
    return proc.popen.pid


def test_same_uri_and_prompt_on_two_instances_are_listed_apart_and_each_answers_for_itself(
    pair: Pair,
) -> None:
    async def main() -> None:
        async with client(pair.gateway.mcp_url()) as c:
            resources = {r.uri: r for r in (await c.list_resources()).resources}
            assert set(resources) == {uri("maya-1", CURRENT), uri("maya-2", CURRENT)}
            assert resources[uri("maya-2", CURRENT)].name == "maya-2__current"
            assert "[maya-2: maya on" in (resources[uri("maya-2", CURRENT)].description or "")
            assert "scene=shot_020.ma" in (resources[uri("maya-2", CURRENT)].description or "")
            for n, (prefix, scene) in enumerate(zip(("maya-1", "maya-2"), SCENES, strict=True)):
                read = await c.read_resource(uri(prefix, CURRENT))
                assert [(x.uri, x.text) for x in read.contents] == [  # type: ignore[union-attr]
                    (uri(prefix, CURRENT), f"maya {scene} pid {_pid(pair.procs[n])}")
                ]

            templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
            assert templates == {uri("maya-1", "app://shots/{name}"), uri("maya-2", "app://shots/{name}")}
            # What a client expands the gateway's template to is what it would send the instance.
            shot = (await c.read_resource(uri("maya-2", "app://shots/sh%20040"))).contents[0]
            assert shot.uri == uri("maya-2", "app://shots/sh%20040")
            assert shot.text == f"sh%20040 in maya shot_020.ma pid {_pid(pair.procs[1])}"  # type: ignore[union-attr]

            prompts = {p.name: p for p in (await c.list_prompts()).prompts}
            assert {"maya-1__review", "maya-2__review", "maya-1__strict", "maya-2__strict"} == set(prompts)
            args = {a.name: a.required for a in prompts["maya-1__review"].arguments or []}
            assert args == {"focus": True, "depth": False}
            for n, (prefix, scene) in enumerate(zip(("maya-1", "maya-2"), SCENES, strict=True)):
                got = await c.get_prompt(f"{prefix}__review", {"focus": "lights", "depth": "full"})
                who = f"maya {scene} pid {_pid(pair.procs[n])}"
                text, embedded = (m.content for m in got.messages)
                assert text.text == f"full review of lights by {who}"  # type: ignore[union-attr]
                assert embedded.resource.uri == uri(prefix, CURRENT)  # type: ignore[union-attr]
                assert embedded.resource.text == who  # type: ignore[union-attr]

            # The instance's own JSON-RPC errors come back as they were, saying who answered.
            with pytest.raises(MCPError) as refused:
                await c.get_prompt("maya-2__strict", {"level": "medium"})
            assert refused.value.error.code == -32602
            assert refused.value.error.message == "maya-2: level 'medium' is not low or high"
            assert refused.value.error.data == {"level": "medium"}
            with pytest.raises(MCPError) as missing:
                await c.read_resource(uri("maya-1", "app://nothing/here"))
            assert missing.value.error.message == "maya-1: Resource not found: app://nothing/here"

    anyio.run(main)


def test_kill_9_removes_its_resources_and_prompts_tells_clients_and_its_uris_say_it_is_gone(
    pair: Pair,
) -> None:
    listener = Listener()

    async def main() -> None:
        async with client(pair.gateway.mcp_url(), listener) as c:
            assert uri("maya-2", CURRENT) in {r.uri for r in (await c.list_resources()).resources}
            await listening(
                listener, pair.front.server.notify_tools_changed, "notifications/tools/list_changed"
            )
            pair.procs[1].kill9()
            wanted = ("notifications/resources/list_changed", "notifications/prompts/list_changed")
            with anyio.fail_after(TTL + GUARD):  # files: a dead pid is never listed; Redis: the TTL
                while not all(listener.count(m) for m in wanted):
                    await anyio.sleep(0.05)
            assert {r.uri for r in (await c.list_resources()).resources} == {uri("maya-1", CURRENT)}
            assert {t.uri_template for t in (await c.list_resource_templates()).resource_templates} == {
                uri("maya-1", "app://shots/{name}")
            }
            assert {p.name for p in (await c.list_prompts()).prompts} == {"maya-1__review", "maya-1__strict"}

            for gone in (CURRENT, "app://shots/sh010"):
                with pytest.raises(MCPError) as err:
                    await c.read_resource(uri("maya-2", gone))
                message = err.value.error.message
                assert err.value.error.code == -32602
                assert (
                    "instance maya-2 (maya on " in message
                    and f"pid {_pid(pair.procs[1])}) is gone" in message
                )
                assert err.value.error.data == {"uri": uri("maya-2", gone), "instance": "maya-2"}
            still: Any = (await c.read_resource(uri("maya-1", CURRENT))).contents[0]
            assert still.text.startswith("maya shot_010.ma")

    anyio.run(main)
