"""``create_skill_server`` and the server object: a tool registry, a config, and ``start()``."""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, overload

from .components import Components
from .components.prompts import build_prompt
from .components.resources import build_resource
from .components.tools import PendingTool, ToolKwargs, ToolOptions, ToolSpec
from .config import McpHttpConfig
from .errors import ServerStartError
from .handle import ServerHandle
from .logs import get_logger

if TYPE_CHECKING:
    from pathlib import Path

    from mcp.server.streamable_http import EventStore

    from .assemble import Blueprint
    from .dispatch import Dispatcher, Dispatching
    from .ops.audit import Operations
    from .runtime import Runtime
    from .skills import SkillCatalog
    from .skills.serve import SkillLoader
    from .tasks import TaskStore

__all__ = ["SkillServer", "create_skill_server"]

log = get_logger("server")

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=Callable[..., Any])


class SkillServer:
    """An MCP server for one host application. Build it with :func:`create_skill_server`."""

    def __init__(
        self,
        app_name: str,
        config: McpHttpConfig | None = None,
        *,
        skill_paths: Sequence[str | os.PathLike[str]] | None = None,
        event_store: EventStore | None = None,
        request_state_keys: Sequence[bytes | str] | None = None,
        task_store: TaskStore | None = None,
    ) -> None:
        if not app_name or not isinstance(app_name, str):
            raise ValueError("app_name must be a non-empty string such as 'maya' or 'blender'")
        self.app_name = app_name
        # Its own copy: the caller may go on assigning to theirs.
        self.config = config.model_copy() if config is not None else McpHttpConfig()
        self.skill_paths = [os.fspath(p) for p in skill_paths] if skill_paths else []
        # The Python that runs subprocess skills; inside a DCC pass its batch interpreter (mayapy, hython).
        self.skill_interpreter: str | None = None
        self._skills: SkillLoader | None = None
        #: What this server serves; handed to the layers that serve it.
        self.components = Components(sink=self._sink)
        self.registry = self.components.tools
        self.resources = self.components.resources
        self.prompts = self.components.prompts
        self.dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()
        self._runtime: Runtime | None = None
        self._handle: ServerHandle | None = None
        self._started_at = 0.0
        #: Answer ``tools/call``, ``tools/list`` and ``ping`` without the SDK where the request
        #: allows it (the same answers, faster). Turn off before ``start()`` to compare with the SDK.
        self.fast_path = True
        #: Replaces the built-in InMemoryEventStore (stateful mode) for Last-Event-ID resumption.
        self.event_store = event_store
        #: Keys (>= 32 bytes) sealing InputRequired state; share them across replicas. None: per process.
        self.request_state_keys = list(request_state_keys) if request_state_keys else None
        #: Where SEP-2663 task state lives; None: an :class:`InMemoryTaskStore` per run.
        self.task_store = task_store

    # -- tools ------------------------------------------------------------------------------------

    @overload
    def tool(self, fn: F, /) -> F: ...
    @overload
    def tool(self, **options: Unpack[ToolKwargs]) -> Callable[[F], F]: ...
    def tool(  # type: ignore[misc]  # mypy rejects a keyword-only overload beside a positional-only one
        self, fn: Callable[..., Any] | None = None, /, **options: Unpack[ToolKwargs]
    ) -> Any:
        """Register a function as a tool: ``@server.tool()`` or ``@server.tool``.

        The input schema comes from the type hints, the description from the docstring (its
        ``Args:`` section documents the parameters), and a typed return gives ``outputSchema``.
        A parameter annotated :class:`ToolContext` receives the call's context.
        The keywords are :class:`ToolOptions`: ``name``, ``description``, ``title``,
        ``annotations`` (MCP hints, camelCase or snake_case), ``affinity`` (``"main"``: the host's
        main thread), ``timeout`` (seconds). ``input_schema`` publishes that JSON Schema verbatim
        instead, and arguments are then validated with ``jsonschema`` (the draft named by
        ``$schema``; 2020-12 by default). ``task="optional"`` lets a call run as a SEP-2663 task
        the client polls, when the client declares the tasks extension; ``task="required"``
        refuses clients that do not (-32021).
        """
        checked = ToolOptions(**options)

        def register(f: F) -> F:
            self._add(PendingTool(f, checked), replace=False)
            return f

        return register(fn) if fn is not None else register

    def add_tool(
        self, fn: Callable[..., Any], *, replace: bool = False, **options: Unpack[ToolKwargs]
    ) -> None:
        """Register ``fn`` as a tool (the keywords of :meth:`tool`). Safe while the server runs."""
        self._add(PendingTool(fn, ToolOptions(**options)), replace=replace)

    def _add(self, pending: PendingTool, *, replace: bool) -> None:
        if self.is_running:
            # Build now so a bad signature fails here, in the caller, not on the next tools/list.
            from .components.schema import build_tool

            self.registry.add(build_tool(pending), replace=replace)
        else:
            self.registry.add_pending(pending, replace=replace)

    def add_tool_spec(self, spec: ToolSpec, *, replace: bool = False) -> None:
        """Register a prebuilt tool (skills use this)."""
        self.registry.add(spec, replace=replace)

    def remove_tool(self, name: str) -> bool:
        """Remove a tool by name. Returns False if there was none."""
        return self.registry.remove(name)

    @property
    def tool_names(self) -> list[str]:
        return self.registry.names()

    # -- resources, prompts, completion (resources.py, prompts.py) --------------------------------

    def resource(
        self,
        uri: str,
        *,
        name: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        title: str | None = None,
    ) -> Callable[[F], F]:
        """Register a function as the reader of ``uri``: ``@server.resource("app://scene/info")``.

        A ``{param}`` in ``uri`` makes a template (``"app://nodes/{name}"``) and is passed to the
        function as a keyword argument. The function returns ``str`` (text) or ``bytes`` (a blob).
        """

        def register(f: F) -> F:
            self.add_resource(uri, f, name=name, description=description, mime_type=mime_type, title=title)
            return f

        return register

    def add_resource(
        self,
        uri: str,
        read_fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        title: str | None = None,
        replace: bool = False,
    ) -> None:
        """Register ``read_fn`` (returning ``str`` or ``bytes``) as the resource at ``uri``.

        Safe while the server runs: clients are told the resource list changed.
        """
        spec = build_resource(
            uri, read_fn, name=name, description=description, mime_type=mime_type, title=title
        )
        self.resources.add(spec, replace=replace)
        self.notify_resources_changed()

    def remove_resource(self, uri: str) -> bool:
        """Remove a resource or template by its URI. Returns False if there was none."""
        found = self.resources.remove(uri)
        if found:
            self.notify_resources_changed()
        return found

    def prompt(
        self, *, name: str | None = None, description: str | None = None, title: str | None = None
    ) -> Callable[[F], F]:
        """Register a function as a prompt: its parameters are the prompt's arguments.

        It returns ``str`` (one user message), :class:`Message` or content items, or a list.
        """

        def register(f: F) -> F:
            self.add_prompt(f, name=name, description=description, title=title)
            return f

        return register

    def add_prompt(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        title: str | None = None,
        replace: bool = False,
    ) -> None:
        """Register ``fn`` as a prompt (see :meth:`prompt`). Safe while the server runs."""
        self.prompts.add(build_prompt(fn, name=name, description=description, title=title), replace=replace)
        self.notify_prompts_changed()

    def remove_prompt(self, name: str) -> bool:
        """Remove a prompt by name. Returns False if there was none."""
        found = self.prompts.remove(name)
        if found:
            self.notify_prompts_changed()
        return found

    def completion(self) -> Callable[[C], C]:
        """Register the ``completion/complete`` handler (one per server; set it before ``start``).

        It is called as ``fn(ref, argument_name, value, context)``: ``ref`` is the wire reference
        (``{"type": "ref/prompt", "name": ...}`` or ``{"type": "ref/resource", "uri": ...}``),
        ``context`` the other arguments already given (or None). It returns suggestions, best
        first; it may be ``async``.
        """

        def register(f: C) -> C:
            self.components.completion = f
            return f

        return register

    # -- notifications (thread-safe; no-ops while stopped) ----------------------------------------

    def notify_resource_updated(self, uri: str) -> None:
        """Tell subscribed clients that the resource at ``uri`` changed. Call from any thread."""
        self.components.notify_resource_updated(uri)

    def notify_tools_changed(self) -> None:
        """Tell clients the tool list changed (done for you by ``add_tool``/``remove_tool``)."""
        self.components.notify_tools_changed()

    def notify_prompts_changed(self) -> None:
        """Tell clients the prompt list changed (done for you by ``add_prompt``/``remove_prompt``)."""
        self.components.notify_prompts_changed()

    def notify_resources_changed(self) -> None:
        """Tell clients the resource list changed (done for you by ``add_resource``/``remove_resource``)."""
        self.components.notify_resources_changed()

    def _sink(self) -> Callable[[Any], None] | None:
        # Nobody to tell while stopped; and importing the SDK for the event would cost the host.
        runtime = self._runtime
        return runtime.publish if runtime is not None and runtime.is_running else None

    # -- skills -----------------------------------------------------------------------------------

    def reload_skills(self) -> SkillCatalog:
        """Discover the skills again and serve what changed: tools and resources are added, replaced
        and removed in place, and clients are sent ``list_changed``. Safe while the server runs.

        Skills come from ``skill_paths``, then ``DCC_MCP_<APP>_SKILL_PATHS``, ``DCC_MCP_SKILL_PATHS``
        and the user data folder. Broken skills are logged (the ``mcp_embed.skills`` logger) and skipped.
        """
        loader = self._skill_loader()
        loader.skill_paths = list(self.skill_paths)
        return loader.load()

    def _skill_loader(
        self, *, env: Mapping[str, str] | None = None, include_user_dir: bool = True
    ) -> SkillLoader:
        """This server's loader, made on first use (``env`` and ``include_user_dir`` apply then)."""
        from .skills.serve import SkillLoader

        if self._skills is None:
            self._skills = SkillLoader(
                self.components,
                self.app_name,
                self.skill_paths,
                list_limit=self.config.skills_list_limit,
                interpreter=self.skill_interpreter,
                env=env,
                include_user_dir=include_user_dir,
            )
            self.components.skills = self._skills
        return self._skills

    def _has_skill_roots(self) -> bool:
        # A host with no skill folders anywhere never loads the skill parsers (memory and time).
        from .skills.roots import any_root_exists

        return any_root_exists(self.app_name, self.skill_paths)

    @property
    def skills(self) -> SkillCatalog | None:
        """The catalog last discovered; ``None`` until ``start()`` finds a skill root or you reload."""
        return self._skills.catalog if self._skills is not None else None

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._runtime is not None and self._runtime.is_running

    def start(self, *, wait: bool = True, timeout: float = 30.0) -> ServerHandle:
        """Start serving and return a :class:`ServerHandle`.

        With ``wait=True`` (the default) this returns once the server answers on its port, and
        raises :class:`ServerStartError` (or :class:`PortInUseError`) here if it cannot start.
        With ``wait=False`` it returns at once; call ``handle.wait_ready()``.
        """
        from .runtime.thread import ThreadRuntime

        runtime: Runtime
        with self._lock:
            if self._runtime is not None and self._runtime.is_running:
                where = self._handle.mcp_url() if self._handle else "?"
                name = self.config.server_name
                raise ServerStartError(f"{name!r} is already running at {where}; stop() it first")
            config = self.config.model_copy()  # this run's: later assignments are for the next start()
            dispatcher = self._start_dispatcher(config)
            plan = self._blueprint(config, dispatcher)
            if config.spawn_mode == "subprocess":
                from .runtime.subprocess.host import SubprocessRuntime

                runtime = SubprocessRuntime(plan)
            else:
                runtime = ThreadRuntime(plan)
            try:
                runtime.start()  # binds the socket here: a port in use raises in the caller
            except BaseException:
                dispatcher.close()
                raise
            self._runtime = runtime
            self._started_at = time.monotonic()
            handle = ServerHandle(runtime, config, dispatcher=dispatcher, app_name=self.app_name)
            self._handle = handle
        _warn_if_exposed(config, runtime.port)
        if config.skills_watch_interval is not None:
            from .skills.serve import SkillWatcher

            watched = SkillWatcher(
                self._skill_roots,
                config.skills_watch_interval,
                lambda: self.is_running,
                self.reload_skills,
            )
            watched.start()
        if wait:
            try:
                handle.wait_ready(timeout)
            except BaseException:
                handle.stop()
                raise
        return handle

    def _start_dispatcher(self, config: McpHttpConfig) -> Dispatching:
        """This run's dispatcher (``self.dispatcher``, else ``config.dispatcher``), set up on the
        calling thread: host hooks (a Qt object, a Blender timer) belong to the host's main thread."""
        from .dispatch import Dispatching, create_dispatcher

        dispatching = Dispatching(
            self.dispatcher if self.dispatcher is not None else create_dispatcher(config)
        )
        dispatching.start()
        return dispatching

    def _blueprint(self, config: McpHttpConfig, dispatcher: Dispatching) -> Blueprint:
        from .assemble import Blueprint

        return Blueprint(
            app_name=self.app_name,
            config=config,
            components=self.components,
            dispatcher=dispatcher,
            event_store=self.event_store,
            task_store=self.task_store,
            request_state_keys=self.request_state_keys,
            fast_path=self.fast_path,
            prepare=self._prepare,
        )

    def _prepare(self) -> None:
        """Run in the server's thread before it serves: build the pending tools (pydantic), and
        discover the skills when a skill root exists."""
        self.registry.build_pending()
        if self._skills is None and self._has_skill_roots():
            self.reload_skills()

    def _skill_roots(self) -> list[tuple[Path, str]]:
        from .skills.roots import skill_roots

        loader = self._skills
        env = loader.env if loader is not None else None
        include_user_dir = loader.include_user_dir if loader is not None else True
        return skill_roots(self.app_name, self.skill_paths, env=env, include_user_dir=include_user_dir)

    @property
    def operations(self) -> Operations | None:
        """This run's audit log, metrics and allow-list (``audit.py``); None before ``start()``
        and in ``spawn_mode="subprocess"``, where the child process keeps them."""
        return self._runtime.operations if self._runtime is not None else None


def _warn_if_exposed(config: McpHttpConfig, port: int) -> None:
    from .auth.config import INSECURE_ENV, insecure_override

    if insecure_override():
        log.warning(
            "%s is set: http:// issuer, JWKS and public URLs are accepted, so tokens may cross the "
            "network in clear text. Never use this outside a test network.",
            INSECURE_ENV,
        )
    if config.is_loopback:
        return
    auth = config.auth
    if auth is not None:
        kind = "API keys" if type(auth).__name__ == "ApiKeyConfig" else "OAuth"
        if auth.enforce == "native":
            log.info("listening on %s:%d; %s checked by the server itself", config.host, port, kind)
            return
        log.warning(
            "mcp-embed is listening on %s:%d, reachable from other machines, with %s enforced at the "
            "edge: the proxy in front MUST check every request (see `mcp-embed edge nginx`); this "
            "server does not.%s",
            config.host,
            port,
            kind,
            "" if config.trusted_proxies else " Set trusted_proxies so it refuses anyone else.",
        )
        return
    msg = (
        f"mcp-embed is listening on {config.host}:{port}, reachable from other machines, "
        "and no authentication is configured: anyone who can reach this port can call every tool. "
        "Bind 127.0.0.1, or put an authenticating proxy in front of it."
    )
    log.warning(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def create_skill_server(
    app_name: str,
    config: McpHttpConfig | None = None,
    *,
    skill_paths: Sequence[str | os.PathLike[str]] | None = None,
    event_store: EventStore | None = None,
    request_state_keys: Sequence[bytes | str] | None = None,
    task_store: TaskStore | None = None,
) -> SkillServer:
    """Create the MCP server of one host application (``"maya"``, ``"blender"``, ...).

    ``config`` defaults to ``McpHttpConfig()``: 127.0.0.1:8765, Streamable HTTP at ``/mcp``.
    ``event_store`` replaces the built-in :class:`InMemoryEventStore` that lets clients resume
    a stream with ``Last-Event-ID`` (stateful mode; subclass :class:`EventStore`).
    ``request_state_keys`` seal :class:`InputRequired` state across processes (default: a
    per-process key; with ``redis_url``, one key every replica shares through Redis).
    ``task_store`` keeps the state of SEP-2663 tasks (default: an :class:`InMemoryTaskStore` per
    run). Call ``start()`` on the result to serve.
    """
    return SkillServer(
        app_name,
        config,
        skill_paths=skill_paths,
        event_store=event_store,
        request_state_keys=request_state_keys,
        task_store=task_store,
    )
