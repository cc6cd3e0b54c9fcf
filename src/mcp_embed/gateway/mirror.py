"""``Mirror``: every instance's resources and prompts in the gateway server's own registries.

A resource is listed under ``mcp-embed+gateway://<prefix>/<its own URI>`` (:func:`gateway_uri`),
a template likewise (its ``{variables}`` untouched, so a client expands it as it would at the
instance), a prompt as ``<prefix>__<name>``; names and descriptions say which instance answers,
as a tool's do. A read or a get goes to the instance's SDK session on the hub's loop, and every
URI in the answer is mapped the same way, so a client can read what it was given. A gateway URI
of an instance no longer listed answers a JSON-RPC error naming it (the registry's fallback).
Changes reach clients through the ``Components`` seam as ``notifications/resources/list_changed``
and ``notifications/prompts/list_changed``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..components.prompts import PromptArgument, PromptSpec
from ..components.resources import ResourceSpec
from ..errors import INTERNAL_ERROR, INVALID_PARAMS, McpError
from ..logs import get_logger
from .naming import describe, gateway_name, gateway_uri, split_gateway_uri
from .upstream import UpstreamGone

if TYPE_CHECKING:
    from ..components import Components
    from .upstream import Upstream

__all__ = ["Mirror"]

log = get_logger("gateway")

Submit = Callable[[Coroutine[Any, Any, dict[str, Any]]], "concurrent.futures.Future[dict[str, Any]]"]
_GONE_KEPT = 1000  # prefixes of instances that left, remembered to name them in errors


class Mirror:
    """The instances' resources and prompts, kept equal to what each instance lists."""

    def __init__(self, components: Components, submit: Submit) -> None:
        self.components = components
        #: Runs a coroutine on the hub's loop (where each instance's session lives).
        self.submit = submit
        self._live: dict[str, Upstream] = {}  # by prefix
        self._gone: dict[str, str] = {}  # prefix -> label of an instance that left
        self._uris: dict[str, set[str]] = {}  # prefix -> its gateway URIs (resources and templates)
        self._prompts: dict[str, set[str]] = {}  # prefix -> its gateway prompt names
        self._wires: dict[tuple[str, str], Any] = {}  # (prefix, kind) -> the lists last installed
        components.resources.fallback = self._resolve

    # -- keeping up with the instances ------------------------------------------------------------

    def install_resources(
        self, up: Upstream, resources: list[dict[str, Any]], templates: list[dict[str, Any]]
    ) -> None:
        """Make ``up``'s gateway resources and templates match its lists (one list_changed)."""
        self._live[up.prefix] = up
        self._gone.pop(up.prefix, None)
        key = (up.prefix, "resources")
        described = (resources, templates, up.instance.metadata)
        if self._wires.get(key) == described:
            return
        self._wires[key] = described
        registry = self.components.resources
        specs = [self._resource(up, w) for w in resources] + [self._template(up, w) for w in templates]
        old = self._uris.get(up.prefix, set())
        new = {s.uri for s in specs}
        for uri in old - new:
            registry.remove(uri)
        for spec in specs:
            registry.add(spec, replace=True)
        self._uris[up.prefix] = new
        if old or new:
            self.components.notify_resources_changed()

    def install_prompts(self, up: Upstream, prompts: list[dict[str, Any]]) -> None:
        """Make ``up``'s gateway prompts match its list (one list_changed)."""
        self._live[up.prefix] = up
        key = (up.prefix, "prompts")
        described = (prompts, up.instance.metadata)
        if self._wires.get(key) == described:
            return
        self._wires[key] = described
        registry = self.components.prompts
        specs = [s for s in (self._prompt(up, w) for w in prompts) if s is not None]
        old = self._prompts.get(up.prefix, set())
        new = {s.name for s in specs}
        for name in old - new:
            registry.remove(name)
        for spec in specs:
            registry.add(spec, replace=True)
        self._prompts[up.prefix] = new
        if old or new:
            self.components.notify_prompts_changed()

    def forget(self, up: Upstream) -> None:
        """``up`` is gone: remove its resources and prompts; its URIs now answer that it is gone."""
        if self._live.get(up.prefix) is up:
            del self._live[up.prefix]
        self._gone[up.prefix] = up.label
        while len(self._gone) > _GONE_KEPT:
            self._gone.pop(next(iter(self._gone)))
        self._wires.pop((up.prefix, "resources"), None)
        self._wires.pop((up.prefix, "prompts"), None)
        uris = self._uris.pop(up.prefix, set())
        for uri in uris:
            self.components.resources.remove(uri)
        names = self._prompts.pop(up.prefix, set())
        for name in names:
            self.components.prompts.remove(name)
        if uris:
            self.components.notify_resources_changed()
        if names:
            self.components.notify_prompts_changed()

    def served(self, prefix: str) -> tuple[list[str], list[str]]:
        """The gateway URIs (resources and templates) and prompt names served for ``prefix``."""
        return sorted(self._uris.get(prefix, ())), sorted(self._prompts.get(prefix, ()))

    # -- what the gateway lists -------------------------------------------------------------------

    def _resource(self, up: Upstream, wire: dict[str, Any]) -> ResourceSpec:
        original = str(wire["uri"])

        async def read() -> list[dict[str, Any]]:
            return await self._read(up, original)

        return self._spec(up, wire, gateway_uri(up.prefix, original), read, None)

    def _template(self, up: Upstream, wire: dict[str, Any]) -> ResourceSpec:
        # Any URI under the instance's prefix: the instance matches it against its own templates.
        root = gateway_uri(up.prefix, "")
        pattern = re.compile(re.escape(root) + r"(?P<uri>.*)", re.DOTALL)

        async def read(uri: str) -> list[dict[str, Any]]:
            return await self._read(up, uri)

        return self._spec(up, wire, gateway_uri(up.prefix, str(wire["uriTemplate"])), read, pattern)

    def _spec(
        self,
        up: Upstream,
        wire: dict[str, Any],
        uri: str,
        read: Callable[..., Any],
        pattern: re.Pattern[str] | None,
    ) -> ResourceSpec:
        return ResourceSpec(
            uri=uri,
            name=f"{up.prefix}__{wire.get('name', uri)}",
            read=read,
            description=describe(up.instance, up.prefix, wire.get("description")),
            mime_type=wire.get("mimeType"),
            title=wire.get("title"),
            params=("uri",) if pattern is not None else (),
            pattern=pattern,
            is_async=True,
        )

    def _prompt(self, up: Upstream, wire: dict[str, Any]) -> PromptSpec | None:
        original = str(wire["name"])
        name = gateway_name(up.prefix, original)
        if name is None:
            log.warning(
                "gateway: %s's prompt %r makes a name over 128 characters: not listed", up.label, original
            )
            return None

        async def get(**arguments: Any) -> list[dict[str, Any]]:
            given = {k: str(v) for k, v in arguments.items()}
            result = await self._ask(up, up.get_prompt(original, given), f"Prompt '{name}'")
            return [_map_message(up.prefix, m) for m in result.get("messages", [])]

        args = tuple(
            PromptArgument(str(a["name"]), a.get("description"), bool(a.get("required", False)))
            for a in wire.get("arguments") or ()
        )
        return PromptSpec(
            name=name,
            fn=get,
            description=describe(up.instance, up.prefix, wire.get("description")),
            title=wire.get("title"),
            arguments=args,
            is_async=True,
        )

    # -- reads and gets -----------------------------------------------------------------------------

    async def _read(self, up: Upstream, original: str) -> list[dict[str, Any]]:
        uri = gateway_uri(up.prefix, original)
        result = await self._ask(up, up.read_resource(original), f"Resource {uri}", {"uri": uri})
        return [_map_contents(up.prefix, c) for c in result.get("contents", [])]

    async def _ask(
        self,
        up: Upstream,
        request: Coroutine[Any, Any, dict[str, Any]],
        what: str,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        from mcp.shared.exceptions import MCPError

        try:
            # Cancelling this await cancels the request on the hub's loop, which tells the instance.
            return await asyncio.wrap_future(self.submit(request))
        except UpstreamGone as exc:
            raise McpError(
                INTERNAL_ERROR, f"{what} did not complete: {exc}", {**(data or {}), "instance": up.prefix}
            ) from None
        except MCPError as exc:  # the instance's own answer: its code and data, and who said it
            raise McpError(exc.error.code, f"{up.prefix}: {exc.error.message}", exc.error.data) from None

    def _resolve(self, uri: str) -> tuple[ResourceSpec, dict[str, str]] | None:
        """A gateway URI nothing lists: its live instance reads it, else an error naming the instance."""
        parts = split_gateway_uri(uri)
        if parts is None:
            return None
        prefix, original = parts
        up = self._live.get(prefix)
        if up is not None:
            live = up

            async def read() -> list[dict[str, Any]]:
                return await self._read(live, original)

            return ResourceSpec(uri=uri, name=uri, read=read, is_async=True), {}
        label = self._gone.get(prefix)
        if label is not None:
            why = f"instance {label} is gone"
        else:
            why = f"no instance {prefix!r} is behind this gateway (list_instances names those it serves)"
        error = McpError(
            INVALID_PARAMS, f"Resource {uri} cannot be read: {why}", {"uri": uri, "instance": prefix}
        )

        async def fail() -> None:
            raise error

        return ResourceSpec(uri=uri, name=uri, read=fail, is_async=True), {}


def _map_contents(prefix: str, contents: dict[str, Any]) -> dict[str, Any]:
    uri = contents.get("uri")
    return {**contents, "uri": gateway_uri(prefix, uri)} if isinstance(uri, str) else contents


def _map_message(prefix: str, message: dict[str, Any]) -> dict[str, Any]:
    """A prompt message whose embedded resource or resource link names its gateway URI."""
    block = message.get("content")
    if not isinstance(block, dict):
        return message
    if block.get("type") == "resource" and isinstance(block.get("resource"), dict):
        block = {**block, "resource": _map_contents(prefix, block["resource"])}
    elif block.get("type") == "resource_link":
        block = _map_contents(prefix, block)
    return {**message, "content": block}
