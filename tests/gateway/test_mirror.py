"""Resources and prompts through the gateway in one process: real mcp-embed instances on port=0,
a registry in memory, and the SDK's own client talking to the gateway."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

import anyio
import pytest
from gateway_helpers import GUARD, Listener, MemoryRegistry, client, listening, record
from mcp.shared.exceptions import MCPError

from mcp_embed import McpHttpConfig, SkillServer, create_skill_server
from mcp_embed.gateway import Gateway, create_gateway
from mcp_embed.handle import ServerHandle

POLL = 0.05
ODD = (
    "app://scène/naïve?q=a%20b&r=1#frag",  # non-ASCII, a query, a percent sign, a fragment
    "app://x/100%25/%7Bnot-a-template%7D",
    "mcp-embed+gateway://maya-9/app://looks/mapped",  # a URI that is already a gateway's
    "file:///C:/Users/me/scene%20one.ma",
)
THUMB = bytes(range(256))


def uri(prefix: str, original: str) -> str:
    return f"mcp-embed+gateway://{prefix}/{original}"


class Side(NamedTuple):
    registry: MemoryRegistry
    server: SkillServer
    instance: ServerHandle
    gateway: ServerHandle
    front: Gateway


@pytest.fixture
def side() -> Iterator[Side]:
    registry = MemoryRegistry()
    server = create_skill_server("maya", McpHttpConfig(port=0))
    for odd in ODD:
        server.add_resource(odd, lambda odd=odd: f"read {odd}", name="odd")
    server.add_resource("app://thumb.png", lambda: THUMB, name="thumb", mime_type="image/png")

    @server.prompt()
    def review(focus: str) -> str:
        """Review the scene."""
        return f"review {focus}"

    instance = server.start()
    gateway = None
    try:
        registry.register(record(instance, "maya", scene="shot_010.ma"))
        front = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=POLL)
        gateway = front.start()
        yield Side(registry, server, instance, gateway, front)
    finally:
        if gateway is not None:
            gateway.stop()
        instance.stop()


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    with anyio.fail_after(GUARD):
        while not await check():
            await anyio.sleep(0.02)


def test_odd_uris_and_blobs_come_back_exactly(side: Side) -> None:
    async def main() -> None:
        async with client(side.gateway.mcp_url()) as c:
            listed = {r.uri: r for r in (await c.list_resources()).resources}
            assert set(listed) == {uri("maya-1", o) for o in (*ODD, "app://thumb.png")}
            for odd in ODD:
                contents: Any = (await c.read_resource(uri("maya-1", odd))).contents
                assert [(x.uri, x.text) for x in contents] == [(uri("maya-1", odd), f"read {odd}")]
            (behind,) = (await c.call_tool("list_instances", {})).structured_content["result"]  # type: ignore[index]
            assert behind["resources"] == sorted(listed)
            assert behind["prompts"] == ["maya-1__review"]
            thumb: Any = (await c.read_resource(uri("maya-1", "app://thumb.png"))).contents[0]
            assert (thumb.mime_type, base64.b64decode(thumb.blob)) == ("image/png", THUMB)
            assert listed[uri("maya-1", "app://thumb.png")].mime_type == "image/png"

    anyio.run(main)


def test_what_an_instance_adds_or_removes_while_running_follows_with_list_changed(side: Side) -> None:
    listener = Listener()
    resources = "notifications/resources/list_changed"
    prompts = "notifications/prompts/list_changed"

    async def main() -> None:
        async with client(side.gateway.mcp_url(), listener) as c:

            async def uris() -> set[str]:
                return {r.uri for r in (await c.list_resources()).resources}

            async def names() -> set[str]:
                return {p.name for p in (await c.list_prompts()).prompts}

            assert await names() == {"maya-1__review"}
            await listening(
                listener, side.front.server.notify_tools_changed, "notifications/tools/list_changed"
            )
            side.server.add_resource("app://notes/{day}", lambda day: f"notes of {day}", name="notes")
            side.server.add_resource("app://late", lambda: "late", name="late")

            @side.server.prompt()
            def light(kind: str) -> str:
                return f"light {kind}"

            await _until(lambda: _has(listener, resources, prompts), "both list_changed")
            await _until(lambda: _holds(uris(), uri("maya-1", "app://late")), "the resource added")
            await _until(lambda: _holds(names(), "maya-1__light"), "the prompt added")
            templates = (await c.list_resource_templates()).resource_templates
            assert [(t.uri_template, t.name) for t in templates] == [
                (uri("maya-1", "app://notes/{day}"), "maya-1__notes")
            ]
            assert (await c.read_resource(uri("maya-1", "app://notes/monday"))).contents[
                0
            ].text == "notes of monday"  # type: ignore[union-attr]
            assert await names() == {"maya-1__review", "maya-1__light"}
            got = await c.get_prompt("maya-1__light", {"kind": "key"})
            assert got.messages[0].content.text == "light key"  # type: ignore[union-attr]

            before = (listener.count(resources), listener.count(prompts))
            side.server.remove_resource("app://late")
            side.server.remove_prompt("light")

            async def told_again() -> bool:
                return all(listener.count(m) > n for m, n in zip((resources, prompts), before, strict=True))

            await _until(told_again, "list_changed again")
            await _until(lambda: _lacks(uris(), uri("maya-1", "app://late")), "the resource gone")
            await _until(lambda: _lacks(names(), "maya-1__light"), "the prompt gone")

    anyio.run(main)


async def _has(listener: Listener, *methods: str) -> bool:
    return all(listener.count(m) for m in methods)


async def _holds(listed: Awaitable[set[str]], item: str) -> bool:
    return item in await listed


async def _lacks(listed: Awaitable[set[str]], item: str) -> bool:
    return item not in await listed


def test_metadata_changes_redescribe_resources_and_prompts(side: Side) -> None:
    (listed,) = side.registry.list()
    side.registry.register(replace(listed, metadata={"scene": "shot_020.ma"}))

    async def main() -> None:
        async with client(side.gateway.mcp_url()) as c:

            async def described() -> bool:
                resource = (await c.list_resources()).resources[0]
                prompt = (await c.list_prompts()).prompts[0]
                return all("scene=shot_020.ma" in (x.description or "") for x in (resource, prompt))

            await _until(described, "the new metadata in the descriptions")
            (prompt,) = (await c.list_prompts()).prompts
            assert (prompt.description or "").startswith("Review the scene.\n\n[maya-1: maya on")

    anyio.run(main)


def test_an_instance_stopped_but_still_listed_answers_errors_naming_it(side: Side) -> None:
    side.instance.stop()  # the registry has not noticed yet: its resources are still listed

    async def main() -> None:
        async with client(side.gateway.mcp_url()) as c:
            with pytest.raises(MCPError) as read:
                await c.read_resource(uri("maya-1", ODD[0]))
            assert read.value.error.code == -32603
            message = read.value.error.message
            assert message.startswith(
                f"Resource {uri('maya-1', ODD[0])} did not complete: instance maya-1 (maya on"
            )
            assert "went away" in message
            assert read.value.error.data == {"uri": uri("maya-1", ODD[0]), "instance": "maya-1"}
            with pytest.raises(MCPError) as got:
                await c.get_prompt("maya-1__review", {"focus": "x"})
            assert got.value.error.message.startswith(
                "Prompt 'maya-1__review' did not complete: instance maya-1"
            )

    anyio.run(main)


def test_uris_of_no_instance_gone_or_never_there_answer_clear_errors(side: Side) -> None:
    listener = Listener()

    async def main() -> None:
        async with client(side.gateway.mcp_url(), listener) as c:
            with pytest.raises(MCPError) as never:
                await c.read_resource(uri("blender-7", "app://scene/current"))
            assert never.value.error.code == -32602
            assert "no instance 'blender-7' is behind this gateway" in never.value.error.message
            with pytest.raises(MCPError) as plain:  # an instance's own URI, not the gateway's
                await c.read_resource(ODD[0])
            assert plain.value.error.message == f"Resource not found: {ODD[0]}"

            await listening(
                listener, side.front.server.notify_tools_changed, "notifications/tools/list_changed"
            )
            (listed,) = side.registry.list()
            side.registry.unregister(listed.id)
            await _until(lambda: _has(listener, "notifications/resources/list_changed"), "list_changed")
            assert (await c.list_resources()).resources == []
            assert (await c.list_prompts()).prompts == []
            with pytest.raises(MCPError) as gone:
                await c.read_resource(uri("maya-1", ODD[1]))
            assert gone.value.error.code == -32602
            message = gone.value.error.message
            assert message.startswith(
                f"Resource {uri('maya-1', ODD[1])} cannot be read: instance maya-1 (maya on "
            )
            assert message.endswith(") is gone")

    anyio.run(main)


def test_cancelling_a_read_on_the_gateway_cancels_the_instances_reader() -> None:
    registry = MemoryRegistry()
    server = create_skill_server("maya", McpHttpConfig(port=0))
    started, cancelled = threading.Event(), threading.Event()

    @server.resource("app://slow")
    async def slow() -> str:
        started.set()
        try:
            await asyncio.sleep(GUARD)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "finished"

    instance = server.start()
    gateway = None
    try:
        registry.register(record(instance, "maya"))
        gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=POLL).start()
        url = gateway.mcp_url()

        async def main() -> None:
            async with client(url) as c:
                with anyio.fail_after(GUARD):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(c.read_resource, uri("maya-1", "app://slow"))
                        assert await anyio.to_thread.run_sync(started.wait, GUARD)
                        tg.cancel_scope.cancel()  # the SDK client sends notifications/cancelled
                    assert await anyio.to_thread.run_sync(cancelled.wait, GUARD)
                    read: Any = (await c.read_resource(uri("maya-1", "app://after"))).contents
                    assert read[0].text == "the session still serves"

        server.add_resource("app://after", lambda: "the session still serves")
        anyio.run(main)
    finally:
        if gateway is not None:
            gateway.stop()
        instance.stop()


def test_a_change_told_while_the_gateway_connects_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_embed.gateway.upstream import Upstream

    registry = MemoryRegistry()
    server = create_skill_server("maya", McpHttpConfig(port=0))
    server.add_resource("app://first", lambda: "first")
    told = threading.Event()
    own_list, own_message = Upstream.list_of, Upstream._message

    async def message(self: Upstream, msg: Any) -> None:
        await own_message(self, msg)
        if getattr(msg, "method", "") == "notifications/resources/list_changed":
            told.set()

    relisted = threading.Event()

    async def list_of(self: Upstream, kind: str) -> list[dict[str, Any]]:
        listed = await own_list(self, kind)
        if kind != "templates":
            return listed
        if told.is_set():  # a listing again, because of the notification
            relisted.set()
        else:  # the gateway's first listing: resources listed, the instance not yet served
            server.add_resource("app://second", lambda: "second")
            assert await asyncio.to_thread(told.wait, GUARD)
            # A listing again that ran now, before the instance is served, must not be the last word.
            await asyncio.to_thread(relisted.wait, 2.0)
        return listed

    monkeypatch.setattr(Upstream, "_message", message)
    monkeypatch.setattr(Upstream, "list_of", list_of)
    instance = server.start()
    gateway = None
    try:
        registry.register(record(instance, "maya"))
        gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=POLL).start()
        url = gateway.mcp_url()

        async def main() -> None:
            async with client(url) as c:

                async def both() -> bool:
                    listed = {r.uri for r in (await c.list_resources()).resources}
                    return listed == {uri("maya-1", "app://first"), uri("maya-1", "app://second")}

                await _until(both, "the resource added while the gateway connected")

        anyio.run(main)
    finally:
        if gateway is not None:
            gateway.stop()
        instance.stop()


def test_an_instance_whose_resource_list_fails_still_serves_its_tools_and_prompts() -> None:
    registry = MemoryRegistry()
    server = create_skill_server("maya", McpHttpConfig(port=0))

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.prompt()
    def review(focus: str) -> str:
        return f"review {focus}"

    def broken() -> list[Any]:
        raise RuntimeError("the resource list is broken")

    server.resources.resources = broken  # type: ignore[method-assign]
    instance = server.start()
    gateway = None
    try:
        registry.register(record(instance, "maya"))
        gateway = create_gateway(McpHttpConfig(port=0), registry=registry, poll_interval=POLL).start()
        url = gateway.mcp_url()

        async def main() -> None:
            async with client(url) as c:
                assert "maya-1__echo" in {t.name for t in (await c.list_tools()).tools}
                assert [p.name for p in (await c.list_prompts()).prompts] == ["maya-1__review"]
                assert (await c.list_resources()).resources == []

        anyio.run(main)
    finally:
        if gateway is not None:
            gateway.stop()
        instance.stop()
