"""The composition root: a :class:`Blueprint` (config + components + this run's parts) becomes the
ASGI app. It runs in the server's own thread (or child process), so the SDK, hypercorn and pydantic
are imported there, never in the host's.

``SkillServer.start()`` builds the blueprint and hands it to a runtime; the runtime calls
:func:`assemble` once it has its event loop. Nothing here knows the server object.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .logs import get_logger

if TYPE_CHECKING:
    from mcp.server.streamable_http import EventStore

    from .components import Components
    from .config import McpHttpConfig
    from .dispatch import Dispatching
    from .http.app import App
    from .ops.audit import Operations
    from .protocol.handlers import Live
    from .replicas.shared import Shared
    from .tasks import TaskStore

__all__ = ["Assembled", "Blueprint", "assemble"]

log = get_logger("server")


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Blueprint:
    """Everything one run of a server is built from; what ``start()`` hands down."""

    app_name: str
    config: McpHttpConfig
    components: Components
    dispatcher: Dispatching
    #: Replaces the built-in InMemoryEventStore (stateful mode) for Last-Event-ID resumption.
    event_store: EventStore | None = None
    #: Where SEP-2663 task state lives; None: an InMemoryTaskStore per run.
    task_store: TaskStore | None = None
    #: Keys sealing InputRequired state; None: a per-process key (with Redis: one all replicas share).
    request_state_keys: Sequence[bytes | str] | None = None
    #: Answer tools/call, tools/list and ping without the SDK where the request allows (fastpath.py).
    fast_path: bool = True
    #: Run in the server's thread before the app is built: build pending tools, discover skills.
    prepare: Callable[[], None] = field(default=_nothing)


@dataclass(frozen=True)
class Assembled:
    """One run's app, with the parts its runtime drives: the operations to close on stop and the
    notifier that reaches connected clients."""

    app: App
    operations: Operations
    live: Live
    #: The run's Redis (``redis_url``): checked before ready, closed on stop. None: all in memory.
    shared: Shared | None = None


def assemble(plan: Blueprint, *, on_startup: Callable[[], None]) -> Assembled:
    """Build the app of one run: operations, tool caller, tasks, SDK server, transports, fast path."""
    from .admission import admitted
    from .events import InMemoryEventStore
    from .http.app import App
    from .http.fastpath import FastPath
    from .http.transport import Transports
    from .ops.audit import build_operations
    from .protocol.caller import ToolCaller
    from .protocol.lowlevel import build_lowlevel_server
    from .protocol.tasks import TaskRuntime
    from .replicas.shared import open_shared
    from .tasks import InMemoryTaskStore

    plan.prepare()
    cfg, components, dispatcher = plan.config, plan.components, plan.dispatcher
    # Audit log, log file, metrics and allow-list of this run (audit.py); closed on stop.
    ops = build_operations(cfg, dispatcher.status, components.tools)
    # Several replicas: the stores move to Redis, each behind the interface the in-memory one has.
    shared = open_shared(cfg) if cfg.redis_url is not None else None
    task_store: TaskStore = (
        plan.task_store
        if plan.task_store is not None
        else shared.tasks
        if shared is not None
        else InMemoryTaskStore()
    )
    event_store: EventStore = (
        plan.event_store
        if plan.event_store is not None
        else shared.events
        if shared is not None
        else InMemoryEventStore(cfg.event_store_max_events)
    )
    caller = ToolCaller(components.tools, dispatcher, ops, audit_arguments=cfg.audit_arguments)
    tasks = TaskRuntime(
        caller,
        task_store,
        ttl=cfg.task_ttl,
        poll_interval=cfg.task_poll_interval,
        handoff=cfg.task_handoff,
    )
    keys = plan.request_state_keys
    if keys is None and shared is not None:
        keys = [shared.request_state_key()]  # a retry may land on another replica
    low, list_tools, live = build_lowlevel_server(cfg, components, caller, tasks, request_state_keys=keys)
    store = event_store if cfg.enable_event_store and not cfg.stateless else None
    transports = Transports(low, cfg, store, shared)
    fast = FastPath(
        caller,
        list_tools,
        transports.manager,
        stateless=cfg.stateless,
        enabled=plan.fast_path,
        may_ask=live.may_ask,
    )
    admits = admitted(cfg)
    if not cfg.is_loopback and cfg.dns_rebinding_protection:
        log.info("the Host/Origin guard admits %s", admits.describe())
    if admits.any_origin and cfg.dns_rebinding_protection and cfg.is_loopback and cfg.auth is None:
        log.warning(
            "'*' is in cors_origins or allowed_origins: any web page this machine's browser opens "
            "can call this server's tools. List the origins instead."
        )
    started = time.monotonic()

    async def health() -> dict[str, Any]:
        if shared is not None:
            await shared.probe()  # bounded and rate-limited: an idle replica sees an outage too
        out = {
            "status": "healthy",
            "name": cfg.server_name,
            "version": cfg.effective_server_version,
            "uptime_s": round(time.monotonic() - started, 3),
            "tools": len(components.tools),
        }
        if shared is not None:
            out.update(shared.status())
            if not shared.health.ok:
                out["status"] = "degraded"
        return out

    app = App(
        cfg,
        transports,
        admitted=admits,
        health=_with_main_thread(health, dispatcher.status),
        on_startup=on_startup,
        fastpath=fast,
        ops=ops,
        shared_buckets=shared.buckets if shared is not None else None,
    )
    return Assembled(app, ops, live, shared)


def _with_main_thread(
    health: Callable[[], Awaitable[dict[str, Any]]], status: Callable[[], dict[str, Any]] | None
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``/health`` plus ``main_thread`` (busy_for_s, queue_depth, ...) when the dispatcher reports it."""
    if status is None:
        return health

    async def with_main_thread() -> dict[str, Any]:
        out = await health()
        out["main_thread"] = status()
        return out

    return with_main_thread
