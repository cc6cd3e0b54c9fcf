"""The gateway in one process: real mcp-embed instances on port=0, a registry in memory, and the
SDK's own client talking to the gateway."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import anyio
import pytest
from gateway_helpers import GUARD, Listener, MemoryRegistry, client, listening, names, record, wait_until

from mcp_embed import McpHttpConfig, ToolContext, create_skill_server
from mcp_embed.gateway import Gateway, create_gateway
from mcp_embed.handle import ServerHandle

POLL = 0.05


class Host:
    """One instance: a server with a few tools, and what its tools saw."""

    def __init__(self, app: str, **metadata: Any) -> None:
        self.app = app
        self.cancelled = threading.Event()
        self.started = threading.Event()
        server = create_skill_server(app, McpHttpConfig(port=0))

        @server.tool()
        def echo(text: str) -> str:
            """Echo the text back."""
            return f"{app}:{text}"

        @server.tool()
        def steps(n: int, ctx: ToolContext) -> int:
            """Report n progress steps."""
            for i in range(n):
                ctx.report_progress(i + 1, n, f"step {i + 1}")
            return n

        @server.tool()
        def hold(ctx: ToolContext) -> str:
            """Run until cancelled."""
            self.started.set()
            deadline = time.monotonic() + GUARD
            while not ctx.cancelled and time.monotonic() < deadline:
                time.sleep(0.01)
            if ctx.cancelled:
                self.cancelled.set()
            return "stopped"

        self.server = server
        self.handle: ServerHandle = server.start()
        self.record = record(self.handle, app, **metadata)

    def stop(self) -> None:
        self.handle.stop()


class World(NamedTuple):
    registry: MemoryRegistry
    hosts: list[Host]
    gateway: Gateway
    handle: ServerHandle


@pytest.fixture
def world() -> Iterator[World]:
    registry = MemoryRegistry()
    hosts = [Host("maya", scene="shot_010.ma"), Host("maya"), Host("blender")]
    for h in hosts:
        registry.register(h.record)
    gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=POLL)
    handle = gateway.start()
    try:
        yield World(registry, hosts, gateway, handle)
    finally:
        handle.stop()
        for h in hosts:
            h.stop()


def test_tools_list_is_the_union_with_one_prefix_per_instance(world: World) -> None:

    async def main() -> None:
        async with client(world.handle.mcp_url()) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            expected = {
                f"{p}__{t}" for p in ("maya-1", "maya-2", "blender-1") for t in ("echo", "steps", "hold")
            }
            assert set(tools) == expected | {"list_instances"}
            echo = tools["maya-1__echo"]
            assert echo.description.startswith("Echo the text back.")
            assert "maya on" in echo.description and "scene=shot_010.ma" in echo.description
            assert "blender on" in tools["blender-1__echo"].description

            listed = (await c.call_tool("list_instances", {})).structured_content["result"]
            assert [(i["prefix"], i["app_name"], i["url"]) for i in listed] == [
                ("maya-1", "maya", world.hosts[0].handle.mcp_url()),
                ("maya-2", "maya", world.hosts[1].handle.mcp_url()),
                ("blender-1", "blender", world.hosts[2].handle.mcp_url()),
            ]
            assert listed[0]["metadata"] == {"scene": "shot_010.ma"}
            assert "maya-1__echo" in listed[0]["tools"]

    anyio.run(main)


def test_input_schema_is_the_instances_own(world: World) -> None:

    async def main() -> None:
        async with client(world.hosts[2].handle.mcp_url()) as direct, client(world.handle.mcp_url()) as c:
            own = {t.name: t for t in (await direct.list_tools()).tools}
            proxied = {t.name: t for t in (await c.list_tools()).tools}
            for name in ("echo", "steps", "hold"):
                assert proxied[f"blender-1__{name}"].input_schema == own[name].input_schema
                assert proxied[f"blender-1__{name}"].output_schema == own[name].output_schema

    anyio.run(main)


def test_calls_reach_the_right_instance(world: World) -> None:

    async def main() -> None:
        async with client(world.handle.mcp_url()) as c:
            for prefix, app in (("maya-1", "maya"), ("maya-2", "maya"), ("blender-1", "blender")):
                result = await c.call_tool(f"{prefix}__echo", {"text": prefix})
                assert not result.is_error
                assert result.content[0].text == f"{app}:{prefix}"
            bad = await c.call_tool("maya-2__steps", {"n": "many"})
            assert bad.is_error and "Invalid arguments for tool 'steps'" in bad.content[0].text

    anyio.run(main)


def test_progress_is_relayed_in_order(world: World) -> None:

    async def main() -> None:
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async with client(world.handle.mcp_url()) as c:
            result = await c.call_tool("blender-1__steps", {"n": 3}, progress_callback=on_progress)
            assert result.structured_content == {"result": 3}
        assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]

    anyio.run(main)


def test_cancelling_a_call_on_the_gateway_stops_the_instances_tool(world: World) -> None:
    target = world.hosts[1]

    async def main() -> None:
        async with client(world.handle.mcp_url()) as c:
            with anyio.move_on_after(GUARD):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(c.call_tool, "maya-2__hold", {})
                    await anyio.to_thread.run_sync(target.started.wait, GUARD)
                    tg.cancel_scope.cancel()  # the SDK client sends notifications/cancelled
            # The gateway still answers on the same session.
            assert (await c.call_tool("maya-1__echo", {"text": "x"})).content[0].text == "maya:x"

    anyio.run(main)
    assert target.started.is_set()
    assert target.cancelled.wait(GUARD), "the instance's tool never saw the cancellation"


def test_instances_that_come_and_go_change_the_list_and_tell_clients(world: World) -> None:
    listener = Listener()
    late = Host("maya")

    async def main() -> None:
        async with client(world.handle.mcp_url(), listener) as c:
            ping = world.gateway.server.notify_prompts_changed
            await listening(listener, ping, "notifications/prompts/list_changed")
            world.registry.unregister(world.hosts[0].record.id)
            await anyio.to_thread.run_sync(
                wait_until, lambda: listener.count("notifications/tools/list_changed") >= 1, "list_changed"
            )
            now = await names(c)
            assert not any(n.startswith("maya-1__") for n in now)
            assert "maya-2__echo" in now

            world.registry.register(late.record)  # a new maya: a new number, never maya-1 again
            await anyio.to_thread.run_sync(
                wait_until, lambda: listener.count("notifications/tools/list_changed") >= 2, "list_changed"
            )
            now = await names(c)
            assert "maya-3__echo" in now and not any(n.startswith("maya-1__") for n in now)
            assert (await c.call_tool("maya-3__echo", {"text": "late"})).content[0].text == "maya:late"

    try:
        anyio.run(main)
    finally:
        late.stop()


def test_an_instance_that_went_away_answers_is_error_naming_it(world: World) -> None:
    world.hosts[2].stop()  # still listed: the registry has not noticed yet

    async def main() -> None:
        async with client(world.handle.mcp_url()) as c:
            result = await c.call_tool("blender-1__echo", {"text": "x"})
            assert result.is_error
            text = result.content[0].text
            assert "blender-1" in text and "went away" in text and world.hosts[2].handle.mcp_url() in text

    anyio.run(main)


def test_metadata_changes_redescribe_the_tools(world: World) -> None:
    from dataclasses import replace

    world.registry.register(replace(world.hosts[1].record, metadata={"scene": "shot_020.ma"}))

    async def main() -> None:
        async with client(world.handle.mcp_url()) as c:

            async def described() -> bool:
                tools = {t.name: t for t in (await c.list_tools()).tools}
                return "scene=shot_020.ma" in (tools["maya-2__echo"].description or "")

            with anyio.fail_after(GUARD):
                while not await described():
                    await anyio.sleep(0.02)

    anyio.run(main)


def test_the_gateway_does_not_front_itself() -> None:
    registry = MemoryRegistry()
    gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=POLL)
    handle = gateway.start()
    try:
        registry.register(record(handle, "gateway"))
        reads = registry.reads
        wait_until(lambda: registry.reads > reads + 1, "two more registry reads")
        assert gateway.instances == []
        assert gateway.server.tool_names == ["list_instances"]
    finally:
        handle.stop()


def test_allowed_tools_apply_to_the_gateway(world: World) -> None:
    config = McpHttpConfig(port=0, allowed_tools=("list_instances", "maya-1__*"))
    gateway = create_gateway(config, registry=world.registry, poll_interval=POLL)
    handle = gateway.start()

    async def main() -> None:
        async with client(handle.mcp_url()) as c:
            assert (await c.call_tool("maya-1__echo", {"text": "ok"})).content[0].text == "maya:ok"
            with pytest.raises(Exception, match="Unknown tool"):
                await c.call_tool("blender-1__echo", {"text": "no"})

    try:
        anyio.run(main)
    finally:
        handle.stop()


def test_stop_closes_the_sessions_and_a_registry_it_opened() -> None:
    registry = MemoryRegistry()
    host = Host("blender")
    registry.register(host.record)
    gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=POLL)
    handle = gateway.start()
    try:
        assert [i["prefix"] for i in gateway.instances] == ["blender-1"]
    finally:
        handle.stop()
        host.stop()
    assert gateway.instances == []
    assert not gateway.hub._thread or not gateway.hub._thread.is_alive()


def test_poll_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="poll_interval must be a positive number"):
        create_gateway(registry=MemoryRegistry(), poll_interval=0)


def test_a_tool_an_instance_adds_while_running_appears_on_the_gateway(world: World) -> None:
    listener = Listener()

    async def main() -> None:
        async with client(world.handle.mcp_url(), listener) as c:
            assert "maya-1__added" not in await names(c)
            ping = world.gateway.server.notify_prompts_changed
            await listening(listener, ping, "notifications/prompts/list_changed")

            def added(x: int) -> int:
                """Added while running."""
                return x * 2

            world.hosts[0].server.add_tool(added)  # the instance tells the gateway's session
            with anyio.fail_after(GUARD):  # the list may answer before the notification arrives
                while "maya-1__added" not in await names(c) or not listener.count(
                    "notifications/tools/list_changed"
                ):
                    await anyio.sleep(0.02)
            assert (await c.call_tool("maya-1__added", {"x": 21})).structured_content == {"result": 42}

    anyio.run(main)


def test_a_call_in_flight_to_an_instance_that_leaves_answers_is_error() -> None:
    """An instance hung mid-call and then dropped from the registry: the caller is answered."""
    registry = MemoryRegistry()
    release, running = threading.Event(), threading.Event()
    server = create_skill_server("maya", McpHttpConfig(port=0))

    @server.tool()
    def stuck() -> str:
        """Block until the test ends."""
        running.set()
        release.wait(2 * GUARD)  # past the caller's guard: only the cut can answer in time
        return "late"

    instance = server.start()
    entry = record(instance, "maya")
    registry.register(entry)
    gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=POLL).start()

    async def main() -> None:
        async with client(gateway.mcp_url()) as c:
            async with anyio.create_task_group() as tg:

                async def drop_when_running() -> None:
                    await anyio.to_thread.run_sync(running.wait, GUARD)
                    registry.unregister(entry.id)

                tg.start_soon(drop_when_running)
                with anyio.fail_after(GUARD):
                    result = await c.call_tool("maya-1__stuck", {})
            assert result.is_error and "went away" in result.content[0].text, result
            assert (await c.call_tool("list_instances", {})).structured_content == {"result": []}

    try:
        anyio.run(main)
    finally:
        release.set()
        gateway.stop()
        instance.stop()


def test_a_stopped_gateway_starts_again_with_the_same_prefixes(world: World) -> None:
    """What failover does after a lost lease: stop, then serve again later."""
    world.handle.stop()
    assert world.gateway.instances == []
    handle = world.gateway.start()
    try:

        async def main() -> None:
            async with client(handle.mcp_url()) as c:
                result = await c.call_tool("blender-1__echo", {"text": "again"})
                assert result.content[0].text == "blender:again"

        anyio.run(main)
        assert [i["prefix"] for i in world.gateway.instances] == ["maya-1", "maya-2", "blender-1"]
    finally:
        handle.stop()
