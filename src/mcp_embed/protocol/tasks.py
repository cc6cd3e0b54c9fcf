"""The SEP-2663 tasks extension on the SDK server: task-enabled ``tools/call`` and
``tasks/get|update|cancel``, for one server run. The task model and stores are ``mcp_embed.tasks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..logs import get_logger
from ..tasks import TASKS_EXTENSION, Task, TaskStatus, TaskStore
from .handlers import is_modern

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

    from ..components.tools import ToolSpec
    from ..context import ToolContext
    from .caller import ToolCaller

__all__ = ["TaskRuntime", "params_types"]

log = get_logger("tasks")

_REQUIRED: dict[str, Any] = {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}}
_KEY_PREFIX = {"elicitation/create": "elicit", "sampling/createMessage": "sample", "roots/list": "roots"}

Invoke = Callable[..., Awaitable[dict[str, Any]]]
MakeContext = Callable[[Callable[[str, dict[str, Any]], None] | None], "ToolContext"]
Send = Callable[[str, dict[str, Any]], Awaitable[None]]


@functools.cache
def params_types() -> tuple[type[Any], type[Any]]:
    """The params models of ``tasks/get``/``tasks/cancel`` and of ``tasks/update`` (built on first use:
    importing this module must not load the SDK)."""
    from mcp_types import RequestParams
    from pydantic import Field

    class TaskIdParams(RequestParams):
        task_id: str = Field(alias="taskId")

    class UpdateTaskParams(TaskIdParams):
        input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")

    return TaskIdParams, UpdateTaskParams


def _mcp_error(code: int, message: str, data: Any = None) -> Exception:
    from mcp.shared.exceptions import MCPError

    return MCPError(code=code, message=message, data=data)


class TaskRuntime:
    """Runs task-enabled tool calls and serves ``tasks/get|update|cancel`` for one server run."""

    def __init__(
        self,
        caller: ToolCaller,
        store: TaskStore,
        *,
        ttl: float | None,
        poll_interval: float | None,
        handoff: float,
    ) -> None:
        self.caller = caller
        self.store = store
        self.ttl = ttl
        self.poll_interval = poll_interval
        self.handoff = handoff
        self.runs: dict[str, _Run] = {}  # tasks whose tool is still running here

    async def close(self) -> None:
        """Cancel every running task (the server is stopping)."""
        for run in list(self.runs.values()):
            await run.cancel()

    # -- tools/call ----------------------------------------------------------------------------------

    async def call_tool(
        self,
        ctx: ServerRequestContext[Any],
        spec: ToolSpec,
        invoke: Invoke,
        make_context: MakeContext,
        send: Send | None,
    ) -> dict[str, Any]:
        """Answer one ``tools/call`` of a task-enabled tool: plainly, or with a task handle."""
        import mcp_types as types

        if not _declared(ctx):
            if spec.task == "required":
                raise _mcp_error(
                    types.MISSING_REQUIRED_CLIENT_CAPABILITY,
                    f"Tool '{spec.name}' runs only as a task: declare the {TASKS_EXTENSION} extension "
                    "(protocol 2026-07-28)",
                    _REQUIRED,
                )
            return await invoke()
        await self._sweep()
        now = time.time()
        task = Task(
            task_id=secrets.token_urlsafe(24),
            tool=spec.name,
            created_at=now,
            ttl=self.ttl,
            poll_interval=self.poll_interval,
            owner=self.caller.principal_of(ctx),
        )
        run = _Run(self, task)
        run.start(invoke, make_context, send)
        try:
            await run.decided.wait()
        except BaseException:
            await run.cancel()  # the client left before it got an answer
            raise
        if run.early is not None:
            outcome = run.early
            if isinstance(outcome, Exception):
                if spec.task == "optional":
                    raise outcome
                error = getattr(outcome, "error", None)
                task.error = error.model_dump(exclude_none=True) if error is not None else _internal()
                task.status = "failed"
            elif outcome.get("resultType") == "input_required" or spec.task == "optional":
                return outcome  # a SEP-2322 round, or the immediate-result shortcut
            else:
                task.result, task.status = outcome, "completed"
        try:
            await self.store.save(task)  # durable before the client hears of it
        except OverflowError as exc:
            await run.cancel()
            log.warning("refusing a task for %r: %s", spec.name, exc)
            raise _mcp_error(types.INTERNAL_ERROR, f"Too many tasks in progress ({exc})") from None
        return {**task.to_wire(detailed=False), "resultType": "task"}

    # -- tasks/get, tasks/update, tasks/cancel -------------------------------------------------------

    async def get(self, ctx: ServerRequestContext[Any], params: Any) -> dict[str, Any]:
        task = await self._find(ctx, params.task_id)
        return {**task.to_wire(), "resultType": "complete"}

    async def update(self, ctx: ServerRequestContext[Any], params: Any) -> dict[str, Any]:
        import mcp_types as types

        task = await self._find(ctx, params.task_id)
        run = self.runs.get(task.task_id)
        if run is not None and not task.is_terminal:
            answers = {k: v for k, v in (params.input_responses or {}).items() if k in run.asks}
            bad = [k for k, v in answers.items() if not isinstance(v, dict)]
            if bad:
                raise _mcp_error(types.INVALID_PARAMS, f"inputResponses[{bad[0]!r}] must be an object")
            await run.answer(answers)
        return {"resultType": "complete"}

    async def cancel(self, ctx: ServerRequestContext[Any], params: Any) -> dict[str, Any]:
        task = await self._find(ctx, params.task_id)
        run = self.runs.get(task.task_id)
        if run is not None and not task.is_terminal:
            await run.cancel(record=True)
        return {"resultType": "complete"}

    async def _find(self, ctx: ServerRequestContext[Any], task_id: str) -> Task:
        """The task a ``tasks/*`` request names, after the protocol, header and owner checks."""
        import mcp_types as types
        from mcp.shared.inbound import decode_header_value

        if not is_modern(ctx):
            raise _mcp_error(types.METHOD_NOT_FOUND, "Method not found", ctx.method)
        headers = getattr(ctx.request, "headers", None)
        if headers is not None and decode_header_value(headers.get("mcp-name")) != task_id:
            raise _mcp_error(types.HEADER_MISMATCH, "Mcp-Name header does not match the request's taskId")
        if not _declared(ctx):
            raise _mcp_error(
                types.MISSING_REQUIRED_CLIENT_CAPABILITY,
                f"{ctx.method} needs the {TASKS_EXTENSION} extension in the request's client capabilities",
                _REQUIRED,
            )
        await self._sweep()
        task = await self.store.load(task_id)
        if task is not None and task.expired():
            await self.store.delete(task_id)
            raise _mcp_error(types.INVALID_PARAMS, "Failed to retrieve task: Task has expired")
        # Someone else's task reads as unknown: a task id must not reveal that it exists.
        if task is None or task.owner != self.caller.principal_of(ctx):
            raise _mcp_error(types.INVALID_PARAMS, "Failed to retrieve task: Task not found")
        return task

    async def _sweep(self) -> None:
        """Stop the tools of tasks whose TTL ran out; their state is forgotten."""
        now = time.time()
        for run in [r for r in self.runs.values() if r.task.expired(now)]:
            await run.cancel()
            await self.store.delete(run.task.task_id)


class _Run:
    """One task-enabled call while its tool runs: the handoff, the questions, the outcome."""

    def __init__(self, runtime: TaskRuntime, task: Task) -> None:
        self.runtime = runtime
        self.task = task
        self.decided = asyncio.Event()
        self.handed_off = False
        self.early: dict[str, Any] | Exception | None = None  # the outcome, if before the handoff
        self.asks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._counter = 0
        self._used: set[str] = set()
        self._main: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._contexts: list[ToolContext] = []

    def start(self, invoke: Invoke, make_context: MakeContext, send: Send | None) -> None:
        loop = asyncio.get_running_loop()
        self._main = loop.create_task(self._drive(invoke, make_context, send))
        self._timer = loop.call_later(self.runtime.handoff, self._hand_off)

    def _hand_off(self) -> None:
        if not self.decided.is_set():
            self.handed_off = True
            self.runtime.runs[self.task.task_id] = self
            self._decide()

    def _finish_early(self, outcome: dict[str, Any] | Exception) -> None:
        self.early = outcome
        self._decide()

    def _decide(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.decided.set()

    async def _drive(self, invoke: Invoke, make_context: MakeContext, send: Send | None) -> None:
        import mcp_types as types
        from mcp.shared.exceptions import MCPError

        responses: dict[str, Any] | None = None
        state: str | None = None
        try:
            while True:
                make = self._maker(make_context, responses, state)
                wire = await invoke(make=make, deliver=self._sender(send))
                if wire.get("resultType") != "input_required" or not self.handed_off:
                    break
                # In a task, an InputRequired round is asked through tasks/get and tasks/update.
                responses = await self._ask_all(wire.get("inputRequests") or {})
                state = wire.get("requestState")
            if not self.handed_off:
                self._finish_early(wire)
            else:
                await self._settle("completed", result=wire)
        except MCPError as exc:
            if not self.handed_off:
                self._finish_early(exc)
            else:
                await self._settle("failed", error=exc.error.model_dump(exclude_none=True))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "task %s of %r failed: %s: %s", self.task.task_id, self.task.tool, type(exc).__name__, exc
            )
            error = _mcp_error(types.INTERNAL_ERROR, f"Task failed: {type(exc).__name__}: {exc}")
            if not self.handed_off:
                self._finish_early(error)
            else:
                await self._settle("failed", error=_internal(str(error)))
        finally:
            if not self.decided.is_set():
                self._finish_early(_mcp_error(types.INTERNAL_ERROR, "Task ended without an outcome"))

    def _maker(self, make: MakeContext, responses: dict[str, Any] | None, state: str | None) -> MakeContext:
        def make_in_task(emit: Callable[[str, dict[str, Any]], None] | None) -> ToolContext:
            ctx = make(emit)
            ctx._request = self.ask  # questions park the task instead of using the request's stream
            if ctx.progress_token is None:
                ctx.progress_token = self.task.task_id  # so report_progress reaches the task
            if responses is not None:
                ctx.input_responses, ctx.request_state = dict(responses), state
            self._contexts.append(ctx)
            return ctx

        return make_in_task

    def _sender(self, send: Send | None) -> Send:
        async def deliver(kind: str, params: dict[str, Any]) -> None:
            if kind == "progress":
                self._hand_off()
                message = params.get("message")
                if message is None:
                    total = params.get("total")
                    done = params.get("progress")
                    message = f"{done:g}/{total:g}" if isinstance(total, (int, float)) else f"{done}"
                self.task.status_message = str(message)
                await self._save()
            elif not self.handed_off and send is not None:
                await send(kind, params)  # logs go to the request while it is still open

        return deliver

    async def ask(self, method: str, params: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        """Put one question to the client through the task; the answer comes with ``tasks/update``."""
        if key is None or key in self._used:
            base = key or _KEY_PREFIX.get(method, "input")
            self._counter += 1
            key = f"{base}-{self._counter}"
        self._used.add(key)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.asks[key] = fut
        self.task.input_requests[key] = {"method": method, "params": params}
        self.task.status = "input_required"
        self._hand_off()
        await self._save()
        try:
            return await fut
        finally:
            self.asks.pop(key, None)
            if self.task.input_requests.pop(key, None) is not None:
                await self._resume_if_answered()

    async def _ask_all(self, requests: dict[str, Any]) -> dict[str, Any]:
        if not requests:
            raise _mcp_error(-32603, f"Tool '{self.task.tool}' returned InputRequired without requests")
        keys = list(requests)
        answers = await asyncio.gather(
            *(self.ask(str(r.get("method")), dict(r.get("params") or {}), key=k) for k, r in requests.items())
        )
        return dict(zip(keys, answers, strict=True))

    async def answer(self, answers: dict[str, dict[str, Any]]) -> None:
        for key, value in answers.items():
            fut = self.asks.get(key)
            if fut is not None and not fut.done():
                fut.set_result(value)
                self.task.input_requests.pop(key, None)
        await self._resume_if_answered()

    async def _resume_if_answered(self) -> None:
        if self.task.status == "input_required" and not self.task.input_requests:
            self.task.status = "working"
        await self._save()

    async def _settle(self, status: TaskStatus, **fields: Any) -> None:
        if self.task.is_terminal:
            return
        self.task.status = status
        for name, value in fields.items():
            setattr(self.task, name, value)
        self.task.input_requests.clear()
        await self._save()
        self.runtime.runs.pop(self.task.task_id, None)

    async def cancel(self, *, record: bool = False) -> None:
        """Stop the tool; ``record`` marks the task cancelled (``tasks/cancel``)."""
        if record:
            await self._settle("cancelled", status_message="Cancelled by the client")
        self.runtime.runs.pop(self.task.task_id, None)
        for ctx in self._contexts:
            ctx._cancel()
        for fut in self.asks.values():
            fut.cancel()
        if self._timer is not None:
            self._timer.cancel()
        main = self._main
        if main is not None and not main.done():
            main.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({main}, timeout=1.0)

    async def _save(self) -> None:
        if not self.handed_off:
            return  # not a task yet: nothing the client could read
        self.task.last_updated_at = time.time()
        try:
            await self.runtime.store.save(self.task)
        except OverflowError as exc:  # only a new task can overflow; this one is already stored
            log.warning("could not save task %s: %s", self.task.task_id, exc)


def _internal(message: str = "Internal error") -> dict[str, Any]:
    return {"code": -32603, "message": message}


def _declared(ctx: ServerRequestContext[Any]) -> bool:
    """True if this request (2026-07-28 envelope) declares the tasks extension."""
    if not is_modern(ctx):
        return False
    caps = ctx.session.client_capabilities
    extensions = getattr(caps, "extensions", None) or {}
    return TASKS_EXTENSION in extensions
