"""Test skills and tools in plain, synchronous pytest tests.

```python
def test_greet(mcp_skills):                      # the fixture comes with mcp-embed (pytest plugin)
    client = mcp_skills("skills/greet")          # served on 127.0.0.1, an OS-assigned port
    assert client.call("greet__greet", name="Ada") == {"greeting": "Hello, Ada!"}
```

Outside pytest, the same thing is a context manager:

```python
with serve_skills("skills/greet") as client:
    client.call("greet__greet", name="Ada")
```

What you test is the real thing: a real server on a loopback port, reached over Streamable HTTP by
the MCP SDK's own client, which runs on an event loop in a background thread so your test stays
synchronous. Nothing about a host is faked: **a tool with ``affinity: main`` (the default for
in-process skill tools) runs through the inline dispatcher**, one call at a time on a worker thread,
as in ``mayapy`` or ``blender -b``. A tool that needs ``maya.cmds`` still needs Maya; test the
logic around it, or run the test under the host's own Python. This is said once per process as a
:class:`InlineDispatchNote` warning.

Skills are served **isolated** by default: only the paths you give are read (not
``DCC_MCP_SKILL_PATHS``, ``DCC_MCP_<APP>_SKILL_PATHS`` or the user data folder), and no audit or
log files are written. Pass ``isolated=False`` to serve what a real host would.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

    from .config import McpHttpConfig
    from .server import SkillServer

__all__ = [
    "InlineDispatchNote",
    "McpTestClient",
    "ToolCallError",
    "connect",
    "serve",
    "serve_skills",
    "skill_server",
]

PathLike = str | os.PathLike[str]

_noted = False


class ToolCallError(Exception):
    """A tool answered with ``isError: true``: ``tool 'name' returned an error: <its message>``.

    Attributes: ``tool`` (its name), ``message`` (the text of the error) and ``result`` (the
    SDK's ``CallToolResult``).
    """

    def __init__(self, tool: str, message: str, result: Any = None) -> None:
        super().__init__(f"tool {tool!r} returned an error: {message}")
        self.tool = tool
        self.message = message
        self.result = result


class InlineDispatchNote(UserWarning):
    """Issued once per process: ``affinity="main"`` tools run on the inline dispatcher in tests."""


class McpTestClient:
    """A synchronous MCP client connected to one server. Made by :func:`serve_skills`,
    :func:`serve`, :func:`connect` or the ``mcp_skills``/``mcp_server``/``mcp_connect`` fixtures.

    ``url`` is the server's Streamable HTTP URL and ``server`` the :class:`~mcp_embed.SkillServer`
    when this module started it (else ``None``).
    """

    def __init__(self, portal: BlockingPortal, session: Any, url: str, server: SkillServer | None) -> None:
        self._portal = portal
        self._session = session
        self.url = url
        self.server = server
        self._tools: dict[str, dict[str, Any]] | None = None

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._portal.call(functools.partial(fn, *args, **kwargs))

    # -- tools ------------------------------------------------------------------------------------

    def list_tools(self) -> list[dict[str, Any]]:
        """Every tool as its ``tools/list`` entry: ``name``, ``description``, ``inputSchema``, ..."""
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):  # a paginator that never ends cannot hang a test
            page = self._run(self._session.list_tools, cursor=cursor, cache_mode="refresh")
            tools += [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        self._tools = {t["name"]: t for t in tools}
        return tools

    def tool_names(self) -> list[str]:
        """The tools' names, sorted."""
        return sorted(t["name"] for t in self.list_tools())

    def tool(self, name: str) -> dict[str, Any]:
        """One tool's ``tools/list`` entry; ``KeyError`` naming the tools there are if it is absent."""
        tools = {t["name"]: t for t in self.list_tools()}
        if name not in tools:
            raise KeyError(f"no tool {name!r}; the server has: {', '.join(sorted(tools)) or 'none'}")
        return tools[name]

    def call(self, name: str, /, **arguments: Any) -> Any:
        """Call a tool and return its result; raise :class:`ToolCallError` if it answers ``isError``.

        The result is the ``structuredContent`` when there is one (a non-object return that the
        server wrapped as ``{"result": value}`` is unwrapped), else the text of a single text block,
        else the list of content blocks as dicts (``None`` for no content).
        """
        return self.call_with(name, arguments)

    def call_with(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        on_progress: Callable[[float, float | None, str | None], None] | None = None,
    ) -> Any:
        """:meth:`call` with the arguments as a dict (for names that are not Python identifiers).

        ``on_progress(progress, total, message)`` is called for each progress notification the
        tool sends (the call then asks for progress), in the test's thread's stead.
        """
        result = self.call_raw(name, arguments, on_progress=on_progress)
        if result.is_error:
            raise ToolCallError(name, result_text(result) or "(no message)", result)
        return self._value(name, result)

    def call_raw(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        on_progress: Callable[[float, float | None, str | None], None] | None = None,
    ) -> Any:
        """Call a tool and return the SDK's ``CallToolResult`` as it came, errors included.

        A protocol error (an unknown tool, for one) raises the SDK's ``MCPError``. ``on_progress``:
        as in :meth:`call_with`.
        """
        callback = None
        if on_progress is not None:
            report = on_progress

            async def callback(progress: float, total: float | None, message: str | None) -> None:
                report(progress, total, message)

        return self._run(self._session.call_tool, name, dict(arguments or {}), progress_callback=callback)

    def _value(self, name: str, result: Any) -> Any:
        structured = result.structured_content
        if structured is not None:
            if self._tools is None or name not in self._tools:
                with contextlib.suppress(Exception):
                    self.list_tools()
            schema = (self._tools or {}).get(name, {}).get("outputSchema")
            if _is_wrapped(schema) and isinstance(structured, dict) and set(structured) == {"result"}:
                return structured["result"]
            return structured
        blocks = [b.model_dump(by_alias=True, exclude_none=True, mode="json") for b in result.content]
        if not blocks:
            return None
        if len(blocks) == 1 and blocks[0].get("type") == "text":
            return blocks[0]["text"]
        return blocks

    # -- resources and prompts --------------------------------------------------------------------

    def list_resources(self) -> list[dict[str, Any]]:
        """Every resource as its ``resources/list`` entry (``uri``, ``name``, ``mimeType``, ...)."""
        page = self._run(self._session.list_resources, cache_mode="refresh")
        return [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in page.resources]

    def read_resource(self, uri: str) -> str | bytes:
        """The content of a resource: ``str`` for text, ``bytes`` for a blob."""
        import base64

        result = self._run(self._session.read_resource, uri, cache_mode="refresh")
        if not result.contents:
            return ""
        first = result.contents[0]
        text = getattr(first, "text", None)
        if text is not None:
            return str(text)
        return base64.b64decode(first.blob)

    def list_prompts(self) -> list[dict[str, Any]]:
        """Every prompt as its ``prompts/list`` entry."""
        page = self._run(self._session.list_prompts, cache_mode="refresh")
        return [p.model_dump(by_alias=True, exclude_none=True, mode="json") for p in page.prompts]

    @property
    def sdk_client(self) -> Any:
        """The underlying ``mcp.client.Client`` (async; run its coroutines with :meth:`run`)."""
        return self._session

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``await fn(*args, **kwargs)`` on the client's event loop and return its result."""
        return self._run(fn, *args, **kwargs)


def result_text(result: Any) -> str:
    """The text blocks of a ``CallToolResult``, joined by newlines."""
    return "\n".join(str(b.text) for b in result.content if getattr(b, "type", None) == "text")


def _is_wrapped(schema: Any) -> bool:
    return (
        isinstance(schema, dict)
        and set(schema.get("properties") or {}) == {"result"}
        and schema.get("required") == ["result"]
    )


# -- connecting and serving -----------------------------------------------------------------------


@contextlib.contextmanager
def connect(
    url: str, *, mode: str = "legacy", headers: Mapping[str, str] | None = None
) -> Iterator[McpTestClient]:
    """A synchronous client of any MCP server at ``url``: Streamable HTTP, or the legacy HTTP+SSE
    transport when the URL's path ends in ``/sse``.

    ``mode`` is the SDK client's: ``"legacy"`` (the ``initialize`` handshake, the default) or
    ``"auto"`` (try ``server/discover`` first). ``headers`` are sent with every request.
    """
    with _connect(url, mode=mode, headers=headers, server=None) as client:
        yield client


@contextlib.contextmanager
def _connect(
    url: str, *, mode: str, headers: Mapping[str, str] | None, server: SkillServer | None
) -> Iterator[McpTestClient]:
    from urllib.parse import urlsplit

    from anyio.from_thread import start_blocking_portal
    from mcp.client import Client

    with contextlib.ExitStack() as stack:
        portal = stack.enter_context(start_blocking_portal())
        target: Any = url
        if urlsplit(url).path.rstrip("/").endswith("/sse"):
            from mcp.client.sse import sse_client

            target, mode = sse_client(url, headers=dict(headers or {})), "legacy"
        elif headers:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = create_mcp_http_client(headers=dict(headers))
            stack.callback(portal.call, http.aclose)
            target = streamable_http_client(url, http_client=http)
        sdk = Client(target, mode=mode, cache=None)
        cm = portal.wrap_async_context_manager(sdk)
        session = cm.__enter__()
        # Closed as if nothing happened: the test's own exception (an assert) must reach pytest as
        # it is, not thrown into the SDK's task groups and wrapped in an ExceptionGroup.
        stack.callback(cm.__exit__, None, None, None)
        yield McpTestClient(portal, session, url, server)


def skill_server(
    *paths: PathLike,
    app: str = "generic",
    config: McpHttpConfig | None = None,
    isolated: bool = True,
    interpreter: str | None = None,
) -> SkillServer:
    """A :class:`~mcp_embed.SkillServer` serving the skills at ``paths``, ready for :func:`serve`.

    ``config`` defaults to loopback, an OS-assigned port, the inline dispatcher and no log files.
    ``app`` filters skills by their ``dcc`` metadata, as in the host of that name.
    """
    from .config import McpHttpConfig
    from .server import create_skill_server

    if config is None:
        config = McpHttpConfig(
            port=0,
            server_name="mcp-embed-test",
            dispatcher="inline",
            enable_file_logging=not isolated,
            register=not isolated,
        )
    server = create_skill_server(app, config, skill_paths=[os.fspath(p) for p in paths])
    server.skill_interpreter = interpreter
    if isolated:
        _isolate(server)
    return server


def _isolate(server: SkillServer) -> None:
    """Read only the server's own ``skill_paths``: no DCC_MCP_* roots, no user data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCC_MCP_")}
    server._skill_loader(env=env, include_user_dir=False)


@contextlib.contextmanager
def serve(server: SkillServer, *, isolated: bool = True, mode: str = "legacy") -> Iterator[McpTestClient]:
    """Start ``server`` on 127.0.0.1 and an OS-assigned port, yield a connected client, stop it all.

    The server's config is used with ``host`` and ``port`` replaced (and restored afterwards);
    ``dispatcher="auto"`` becomes ``"inline"``, so tests never depend on a host's event loop. With
    ``isolated`` (the default) its skills come from its ``skill_paths`` only, it is not listed
    among the running instances, and unless the config names a ``log_dir``, no log files are
    written.
    """
    if server.is_running:
        raise RuntimeError("the server is already running: stop() it first, or use connect(handle.mcp_url())")
    original = server.config
    update: dict[str, Any] = {"host": "127.0.0.1", "port": 0}
    if original.dispatcher == "auto" and server.dispatcher is None:
        update["dispatcher"] = "inline"
    if isolated and original.log_dir is None:
        update["enable_file_logging"] = False
    if isolated:
        update["register"] = False  # a test's server is not an instance for the gateway to front
    server.config = original.model_copy(update=update)
    try:
        if isolated:
            _isolate(server)
        if server.skills is None:
            server.reload_skills()  # discovered here, with the isolated loader, before start() would
        handle = server.start()
        try:
            _note_main_affinity(server, handle.dispatcher)
            with _connect(handle.mcp_url(), mode=mode, headers=None, server=server) as client:
                yield client
        finally:
            handle.stop()
    finally:
        server.config = original


@contextlib.contextmanager
def serve_skills(
    *paths: PathLike,
    app: str = "generic",
    config: McpHttpConfig | None = None,
    isolated: bool = True,
    interpreter: str | None = None,
) -> Iterator[McpTestClient]:
    """Serve the skills at ``paths`` (skill folders, or roots holding them) and yield a client.

    See :func:`skill_server` for ``app``, ``config``, ``isolated`` and ``interpreter``. Broken
    skills are skipped, as in a host; check them with ``mcp-embed skills validate`` or
    ``client.server.skills.problems``.
    """
    server = skill_server(*paths, app=app, config=config, isolated=isolated, interpreter=interpreter)
    with serve(server, isolated=isolated) as client:
        yield client


def _note_main_affinity(server: SkillServer, dispatcher: str) -> None:
    global _noted
    if _noted or dispatcher != "inline":
        return
    main = sorted(spec.name for spec in server.registry if spec.affinity == "main")
    if not main:
        return
    _noted = True
    shown = ", ".join(main[:3]) + (", ..." if len(main) > 3 else "")
    warnings.warn(
        f"mcp_embed.testing: main-thread tools ({shown}) run through the inline dispatcher, one at a "
        "time on a worker thread; no host is faked, so host modules (maya.cmds, bpy, hou) are only "
        "there if this Python has them.",
        InlineDispatchNote,
        stacklevel=4,
    )
