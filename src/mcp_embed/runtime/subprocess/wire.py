"""What the host and the child of ``spawn_mode="subprocess"`` say to each other: typed messages on
one ``multiprocessing.connection`` pipe.

Each message is a ``NamedTuple``; :class:`Channel` sends it as a plain tuple (its tag, then its
fields), because pickling a bare tuple costs a fraction of pickling a class instance, and rebuilds
the typed message on the other side. Requests carry an id the reply repeats; a reply's outcome is
an :data:`Outcome`, made from an exception by :func:`failure` and turned back into one by
:func:`raise_for`, so both sides map errors the same way.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ...context import ContextMeta

if TYPE_CHECKING:
    from multiprocessing.connection import _ConnectionBase

__all__ = ["Channel", "ContextMeta", "Message", "Outcome", "failure", "raise_for"]

OutcomeStatus = Literal["ok", "mcp_error", "error", "cancelled", "no_back_channel"]
#: ``("ok", value)``, ``("mcp_error", (code, message, data))``, ``("error", text)``,
#: ``("cancelled", None)`` or ``("no_back_channel", None)``.
Outcome = tuple[OutcomeStatus, Any]


def failure(exc: BaseException) -> Outcome:
    """The outcome that reports ``exc`` to the other side."""
    from mcp.shared.exceptions import MCPError, NoBackChannelError

    from ...errors import McpError

    if isinstance(exc, NoBackChannelError):
        return "no_back_channel", None
    if isinstance(exc, MCPError):
        return "mcp_error", (exc.error.code, exc.error.message, exc.error.data)
    if isinstance(exc, McpError):
        return "mcp_error", (exc.code, exc.message, exc.data)
    return "error", f"{type(exc).__name__}: {exc}"


def raise_for(outcome: Outcome, what: str) -> Any:
    """The value of an ``ok`` outcome; else the exception it reports (``what``: the failed thing)."""
    status, value = outcome
    if status == "ok":
        return value
    from mcp.shared.exceptions import MCPError, NoBackChannelError

    if status == "mcp_error":
        code, message, data = value
        raise MCPError(code=code, message=message, data=data)
    if status == "no_back_channel":
        raise NoBackChannelError(what)
    from ...errors import ToolError

    if status == "cancelled":
        raise ToolError(f"{what} was cancelled in the host")
    raise ToolError(str(value))


# -- child to host -------------------------------------------------------------------------------


class Call(NamedTuple):
    """Run a host tool (validated there, by the tool's own validator)."""

    cid: int
    name: str
    arguments: dict[str, Any]
    meta: ContextMeta


class Read(NamedTuple):
    """The raw value of a host resource reader (the child builds ``contents``)."""

    cid: int
    uri: str
    args: dict[str, Any]
    meta: ContextMeta


class GetPrompt(NamedTuple):
    cid: int
    name: str
    args: dict[str, Any]
    meta: ContextMeta


class Complete(NamedTuple):
    cid: int
    ref: dict[str, Any]
    argument: str
    value: str
    context: dict[str, Any] | None


class SkillsRequest(NamedTuple):
    """A SEP-2640 method (``skills/list``, ``skills/get``, ``resources/directory/read``)."""

    cid: int
    method: str
    params: dict[str, Any]


class Cancel(NamedTuple):
    cid: int


class Resolve(NamedTuple):
    """The child missed tool ``name``: analyse its skill if pending, re-send the catalogue, answer."""

    rid: int
    name: str


class Answer(NamedTuple):
    """The client's answer to an :class:`Ask`."""

    aid: int
    outcome: Outcome


class StatusPoll(NamedTuple):
    """Send the host dispatcher's main-thread report (for ``/health``)."""


class Log(NamedTuple):
    fields: dict[str, Any]


class Ack(NamedTuple):
    """Catalogue ``seq`` is applied."""

    seq: int


class Ready(NamedTuple):
    port: int


class Failed(NamedTuple):
    message: str


# -- host to child -------------------------------------------------------------------------------


class Init(NamedTuple):
    app_name: str
    config: Any  # McpHttpConfig
    catalog: dict[str, Any]
    socket: dict[str, Any]  # {"fd": n} or, on Windows, {"share": bytes}
    dispatcher: str
    host_pid: int
    completion: bool
    request_state_keys: list[bytes | str] | None
    skills: bool


class Result(NamedTuple):
    cid: int
    outcome: Outcome


class Notify(NamedTuple):
    """Progress or a log message of running call ``cid``."""

    cid: int
    kind: str
    params: dict[str, Any]


class Catalog(NamedTuple):
    seq: int
    catalog: dict[str, Any]


class Resolved(NamedTuple):
    rid: int


class Ask(NamedTuple):
    """Ask the client of call ``cid`` (elicitation, sampling) on the host tool's behalf."""

    aid: int
    cid: int
    method: str
    params: dict[str, Any]


class ResourceUpdated(NamedTuple):
    uri: str


class Status(NamedTuple):
    report: dict[str, Any]


class Stop(NamedTuple):
    pass


Message = (
    Call | Read | GetPrompt | Complete | SkillsRequest | Cancel | Resolve | Answer | StatusPoll | Log | Ack
) | (Ready | Failed | Init | Result | Notify | Catalog | Resolved | Ask | ResourceUpdated | Status | Stop)
_KINDS: tuple[type[Any], ...] = (
    Call, Read, GetPrompt, Complete, SkillsRequest, Cancel, Resolve, Answer, StatusPoll, Log, Ack, Ready,
    Failed, Init, Result, Notify, Catalog, Resolved, Ask, ResourceUpdated, Status, Stop,
)  # fmt: skip
_TAG = {kind: tag for tag, kind in enumerate(_KINDS)}


class Channel:
    """One end of the pipe: :meth:`send` from any thread (one message, one write), :meth:`recv`
    in the one reader thread."""

    def __init__(self, conn: _ConnectionBase) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, msg: Message) -> None:
        raw = (_TAG[type(msg)], *msg)
        with self._lock:
            self.conn.send(raw)

    def recv(self) -> Message:
        raw = self.conn.recv()
        kind: Any = _KINDS[raw[0]]
        return kind._make(raw[1:])  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.close()
