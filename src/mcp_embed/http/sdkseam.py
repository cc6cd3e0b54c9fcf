"""The SDK internals the fast path relies on, in one place, and checked.

The fast path answers a stateful session's request without the SDK's per-request transport, so it
needs four things the SDK keeps private (``mcp>=2.3,<3`` declares none of them public): the
session manager's transports by session id and the principal that opened each session, and a
transport's idle timeout and count of requests in flight (the idle clock it holds while a request
runs). Only this module names them.

:func:`contract_problems` says which are missing. The fast path asks once per server run and, if
any moved, turns itself off with a warning: the SDK then serves every request, so an SDK upgrade
can cost speed but never correctness. ``tests/http/test_sdkseam.py`` fails on the same check, so
the day it happens we know.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from mcp.server.streamable_http import StreamableHTTPServerTransport
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

__all__ = [
    "adopt_session",
    "adoption_problems",
    "contract_problems",
    "creation_lock",
    "discard_session",
    "holding_idle_clock",
    "lifespan_state",
    "session_ending",
    "session_owner",
    "session_transport",
    "task_group",
    "wrap_event_store",
]

MANAGER_FIELDS: dict[str, type] = {"_server_instances": dict, "_session_owners": dict}
TRANSPORT_FIELDS: dict[str, tuple[type, ...]] = {"_idle_timeout": (float, int), "_requests_in_flight": (int,)}
TRANSPORT_PUBLIC = ("idle_scope", "is_terminated")


def _manager_problems(manager: StreamableHTTPSessionManager) -> list[str]:
    return [
        f"StreamableHTTPSessionManager.{name} is not a {kind.__name__}"
        for name, kind in MANAGER_FIELDS.items()
        if not isinstance(getattr(manager, name, None), kind)
    ]


def contract_problems(manager: StreamableHTTPSessionManager) -> list[str]:
    """What the fast path needs and this SDK lacks: empty when the contract holds."""
    from mcp.server.streamable_http import StreamableHTTPServerTransport

    problems = _manager_problems(manager)
    probe = StreamableHTTPServerTransport(mcp_session_id=None, idle_timeout=1.0)
    problems += [
        f"StreamableHTTPServerTransport.{name} is missing or of another type"
        for name, kinds in TRANSPORT_FIELDS.items()
        if not isinstance(getattr(probe, name, None), kinds)
    ]
    problems += [
        f"StreamableHTTPServerTransport.{name} is missing"
        for name in TRANSPORT_PUBLIC
        if not hasattr(probe, name)
    ]
    return problems


def session_transport(
    manager: StreamableHTTPSessionManager, session_id: str
) -> StreamableHTTPServerTransport | None:
    """The live transport of a stateful session, or None."""
    transports: dict[str, StreamableHTTPServerTransport] = manager._server_instances
    return transports.get(session_id)


def session_owner(manager: StreamableHTTPSessionManager, session_id: str) -> Any:
    """The authorization context that opened ``session_id`` (None: an anonymous session)."""
    return manager._session_owners.get(session_id)


def session_ending(transport: StreamableHTTPServerTransport) -> bool:
    """Terminated, never connected, or its idle time already ran out: the SDK must answer."""
    idle = transport.idle_scope
    return transport.is_terminated or idle is None or idle.cancel_called


class holding_idle_clock:
    """Hold the session's idle clock while a request runs, as the SDK's own transport does.

    A class, not a generator: it runs on every fast-path request of a stateful session."""

    __slots__ = ("timeout", "transport")

    def __init__(self, transport: StreamableHTTPServerTransport) -> None:
        self.transport = transport
        self.timeout = transport._idle_timeout

    def __enter__(self) -> None:
        idle = self.transport.idle_scope
        assert idle is not None  # session_ending() said no
        self.transport._requests_in_flight += 1
        idle.deadline = math.inf

    def __exit__(self, *exc: object) -> None:
        transport = self.transport
        transport._requests_in_flight -= 1
        idle = transport.idle_scope
        if not transport._requests_in_flight and self.timeout is not None and idle is not None:
            idle.deadline = anyio.current_time() + self.timeout


# What adopting a session created on another replica (``redis_url``) needs besides the above.
ADOPTION_MANAGER_FIELDS = ("_task_group", "_lifespan_state", "_discard_session", "_session_creation_lock")
ADOPTION_TRANSPORT_FIELDS = ("_event_store",)


def adoption_problems(manager: StreamableHTTPSessionManager) -> list[str]:
    """What adopting another replica's session needs and this SDK lacks: empty when it holds."""
    from mcp.server.streamable_http import StreamableHTTPServerTransport

    problems = _manager_problems(manager)
    problems += [
        f"StreamableHTTPSessionManager.{name} is missing"
        for name in ADOPTION_MANAGER_FIELDS
        if not hasattr(manager, name)
    ]
    probe = StreamableHTTPServerTransport(mcp_session_id=None)
    problems += [
        f"StreamableHTTPServerTransport.{name} is missing"
        for name in ADOPTION_TRANSPORT_FIELDS
        if not hasattr(probe, name)
    ]
    return problems


def adopt_session(
    manager: StreamableHTTPSessionManager,
    session_id: str,
    transport: StreamableHTTPServerTransport,
    owner: Any,
) -> None:
    """Register ``transport`` as the session ``session_id``, answering only to ``owner``."""
    if owner is not None:
        manager._session_owners[session_id] = owner
    manager._server_instances[session_id] = transport


async def discard_session(
    manager: StreamableHTTPSessionManager, session_id: str, transport: StreamableHTTPServerTransport
) -> None:
    """Forget the session and terminate its transport, as the SDK does when a session ends."""
    await manager._discard_session(session_id, transport)


def creation_lock(manager: StreamableHTTPSessionManager) -> anyio.Lock:
    lock: anyio.Lock = manager._session_creation_lock
    return lock


def task_group(manager: StreamableHTTPSessionManager) -> Any:
    """The task group sessions run in (set while the manager runs)."""
    return manager._task_group


def lifespan_state(manager: StreamableHTTPSessionManager) -> Any:
    return manager._lifespan_state


def wrap_event_store(transport: StreamableHTTPServerTransport, wrap: Any) -> None:
    """Replace the transport's event store (if any) by ``wrap(store)``."""
    store = transport._event_store
    if store is not None:
        transport._event_store = wrap(store)
