"""The main-thread queue every host adapter shares, and the dispatcher built on it.

The server's event loop never waits for the host: a ``main`` tool becomes a :class:`Job` in a
bounded queue, the adapter asks the host to call :meth:`MainThreadQueue.pump` on its main thread,
and the loop awaits an asyncio future that the pump settles with ``call_soon_threadsafe``.

* A full queue is refused at once (an ``isError`` result), never a hang.
* A call that waits longer than its limit is dropped from the queue and answered
  "main thread busy for N s; queue depth M".
* A job that is already running cannot be pre-empted: its caller is answered, ``ctx.cancelled``
  is set, and the job is reported as wedged in the log and in ``/health`` until it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

from ..errors import ToolError
from ..logs import get_logger
from ..ops import tracing

if TYPE_CHECKING:
    from ..components.tools import ToolSpec
    from ..context import ToolContext

log = get_logger("dispatch")

JobState = Literal["queued", "running", "done", "dropped"]

DEFAULT_QUEUE_DEPTH = 64
DEFAULT_WAIT_TIMEOUT = 30.0
DEFAULT_BUDGET_MS = 8.0


class Job:
    """One main-thread call: the callable, and the future the event loop awaits."""

    __slots__ = (
        "abandoned",
        "call",
        "ctx",
        "enqueued",
        "future",
        "loop",
        "name",
        "started",
        "state",
        "wedged",
    )

    def __init__(
        self,
        name: str,
        call: Callable[[], Any],
        loop: asyncio.AbstractEventLoop,
        ctx: ToolContext | None = None,
    ) -> None:
        self.name = name
        self.call = call
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.ctx = ctx
        self.enqueued = time.monotonic()
        self.started = 0.0
        self.state: JobState = "queued"
        self.wedged = False
        self.abandoned = False  # the caller stopped waiting; the result goes nowhere

    def settle(self, value: Any, exc: BaseException | None) -> None:
        """Hand the outcome to the event loop (from the thread that ran the job)."""
        if exc is not None and not isinstance(exc, Exception):
            # KeyboardInterrupt, SystemExit: the host handles those; the caller gets an error.
            exc = RuntimeError(f"{type(exc).__name__} on the main thread")
        with contextlib.suppress(RuntimeError):  # the loop closed: the server stopped
            self.loop.call_soon_threadsafe(self._set, value, exc)

    def _set(self, value: Any, exc: BaseException | None) -> None:
        if self.future.done() or self.abandoned:
            return
        if exc is not None:
            self.future.set_exception(exc)
        else:
            self.future.set_result(value)


class MainThreadQueue:
    """A bounded FIFO of jobs, run one at a time by whoever calls :meth:`pump`."""

    def __init__(self, depth: int = DEFAULT_QUEUE_DEPTH) -> None:
        if depth < 1:
            raise ValueError("the main-thread queue depth must be at least 1")
        self.depth = depth
        self._jobs: deque[Job] = deque()
        self._lock = threading.Lock()  # guards _jobs, _running and job states
        self._run_lock = threading.Lock()  # one job at a time, and no re-entrant pump
        self._running: Job | None = None
        self.closed = False
        self.pump_thread: int | None = None  # ident of the thread that last pumped

    # -- the event loop's side --------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job`` or raise :class:`ToolError` at once if the queue is full or closed."""
        with self._lock:
            if self.closed:
                raise ToolError(f"Tool '{job.name}' was not run: the server is stopping")
            if len(self._jobs) >= self.depth:
                busy = self._busy_for_locked(time.monotonic())
                raise ToolError(
                    f"Tool '{job.name}' was not run: the main thread is overloaded "
                    f"(queue full at depth {self.depth}; main thread busy for {busy:.1f} s). "
                    "Try again later."
                )
            self._jobs.append(job)

    def withdraw(self, job: Job) -> bool:
        """Drop ``job`` if it has not started. True if it was dropped."""
        with self._lock:
            if job.state != "queued":
                return False
            with contextlib.suppress(ValueError):
                self._jobs.remove(job)
            job.state = "dropped"
            job.abandoned = True
            return True

    def mark_wedged(self, job: Job, why: str) -> None:
        with self._lock:
            if job.state != "running" or job.wedged:
                return
            job.wedged = True
            busy = time.monotonic() - job.started
            depth = len(self._jobs)
        log.warning(
            "main-thread job %r is wedged: running for %.1f s (%s); it cannot be interrupted, queue depth %d",
            job.name,
            busy,
            why,
            depth,
        )

    # -- the main thread's side -------------------------------------------------------------------

    def pump(self, budget_s: float = DEFAULT_BUDGET_MS / 1000, *, blocking: bool = False) -> int:
        """Run queued jobs on the calling thread for up to ``budget_s`` (at least one job).

        Returns how many ran. A pump already in progress (another thread, or a tool that spins
        the host's event loop and so re-enters) makes this return 0 at once unless ``blocking``.
        """
        if not self._run_lock.acquire(blocking):
            return 0
        ran = 0
        try:
            self.pump_thread = threading.get_ident()
            t0 = time.perf_counter()
            while True:
                with self._lock:
                    if not self._jobs:
                        break
                    job = self._jobs.popleft()
                    job.state = "running"
                    job.started = time.monotonic()
                    self._running = job
                try:
                    self._execute(job)
                finally:
                    with self._lock:
                        self._running = None
                        job.state = "done"
                    if job.wedged:
                        log.warning(
                            "main-thread job %r returned after %.1f s; the main thread is free again",
                            job.name,
                            time.monotonic() - job.started,
                        )
                ran += 1
                if time.perf_counter() - t0 >= budget_s:
                    break
        finally:
            self._run_lock.release()
        return ran

    @staticmethod
    def _execute(job: Job) -> None:
        try:
            value = job.call()
        except Exception as exc:
            job.settle(None, exc)
        except BaseException as exc:
            job.settle(None, exc)
            raise
        else:
            job.settle(value, None)

    # -- either side ------------------------------------------------------------------------------

    @property
    def pumping(self) -> bool:
        """True while a job runs (a pump is in progress)."""
        return self._run_lock.locked()

    def has_work(self) -> bool:
        with self._lock:
            return bool(self._jobs)

    def _busy_for_locked(self, now: float) -> float:
        if self._running is not None:
            return now - self._running.started
        if self._jobs:
            return now - self._jobs[0].enqueued  # nobody has come round to the oldest call
        return 0.0

    def snapshot(self) -> tuple[float, int, Job | None]:
        """``(busy_for_s, queue_depth, running job)``."""
        with self._lock:
            return self._busy_for_locked(time.monotonic()), len(self._jobs), self._running

    def close(self) -> int:
        """Refuse new jobs and fail the queued ones. Returns how many were dropped."""
        with self._lock:
            self.closed = True
            dropped = list(self._jobs)
            self._jobs.clear()
            for job in dropped:
                job.state = "dropped"
        for job in dropped:
            job.settle(None, ToolError(f"Tool '{job.name}' was not run: the server is stopping"))
        return len(dropped)


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class QueueDispatcher:
    """Base of every dispatcher: ``any`` tools on worker threads, ``main`` tools through the queue.

    A subclass says how the host is asked to pump (:meth:`_wake`), and may install and remove
    host hooks in :meth:`start` and :meth:`close`. Timeouts are handled here, so
    ``ToolCaller`` leaves them to the dispatcher (``handles_timeouts``).
    """

    name = "queue"
    handles_timeouts = True

    def __init__(
        self,
        *,
        depth: int = DEFAULT_QUEUE_DEPTH,
        wait_timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        budget_ms: float = DEFAULT_BUDGET_MS,
    ) -> None:
        self.queue = MainThreadQueue(depth)
        self.wait_timeout = wait_timeout
        self.budget_ms = budget_ms
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._warned_async_main = False

    # -- lifecycle (called from the thread that calls start()/stop(), usually the host's main) ----

    def start(self) -> None:
        """Install host hooks. Called by ``SkillServer.start`` before the server thread starts."""

    def close(self) -> None:
        """Fail queued jobs and remove host hooks. Idempotent."""
        n = self.queue.close()
        if n:
            log.info("dropped %d queued main-thread call(s) on stop", n)

    # -- waking the host --------------------------------------------------------------------------

    def _wake(self) -> None:
        """Ask the host to call :meth:`_tick` on its main thread soon. Override per host."""

    def _request_tick(self) -> None:
        """Coalesced :meth:`_wake`: one pending tick is enough, however many jobs arrive."""
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._wake()
        except Exception as exc:
            with self._wake_lock:
                self._wake_pending = False
            log.warning("could not wake the host's main thread (%s: %s)", type(exc).__name__, exc)

    def _tick(self) -> None:
        """One pump on the host's main thread; asks for another tick if work is left."""
        with self._wake_lock:
            self._wake_pending = False
        if self.queue.closed or self.queue.pumping:
            # Re-entered from a tool that spins the host's event loop (processEvents and the
            # like): the pump below us picks the work up when that tool returns.
            return
        self.queue.pump(self.budget_ms / 1000)
        if self.queue.has_work() and not self.queue.closed:
            self._continue()

    def _continue(self) -> None:
        """The budget ran out with work left: tick again after the host's own events."""
        self._request_tick()

    def pump(self, budget_ms: float | None = None) -> int:
        """Run queued main-thread jobs on the calling thread for up to ``budget_ms``."""
        return self.queue.pump((self.budget_ms if budget_ms is None else budget_ms) / 1000)

    # -- health -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        busy, depth, running = self.queue.snapshot()
        if running is not None and self.wait_timeout is not None and busy > self.wait_timeout:
            self.queue.mark_wedged(running, f"longer than main_thread_timeout={self.wait_timeout:g} s")
        return {
            "dispatcher": self.name,
            "busy_for_s": round(busy, 3),
            "queue_depth": depth,
            "max_queue_depth": self.queue.depth,
            "running": running.name if running is not None else None,
            "wedged": bool(running is not None and running.wedged),
        }

    # -- running a call ---------------------------------------------------------------------------

    async def run(self, spec: ToolSpec, kwargs: dict[str, Any], ctx: ToolContext | None) -> Any:
        if spec.is_async:
            if spec.affinity == "main" and not self._warned_async_main:
                self._warned_async_main = True
                log.info(
                    "tool %r is a coroutine: it runs on the server's event loop, not the host's "
                    "main thread (make it a plain function to run it there)",
                    spec.name,
                )
            return await self._timed(spec, ctx, spec.invoke(**kwargs))
        call = functools.partial(spec.invoke, **kwargs)
        if spec.affinity != "main":
            # abandon_on_cancel: a cancelled client gets its answer at once; the thread finishes
            # in the background (Python cannot pre-empt it) and ctx.cancelled tells the tool.
            return await self._timed(spec, ctx, anyio.to_thread.run_sync(call, abandon_on_cancel=True))
        return await self._run_main(spec, call, ctx)

    async def _timed(self, spec: ToolSpec, ctx: ToolContext | None, awaitable: Any) -> Any:
        if spec.timeout is None:
            return await awaitable
        with anyio.move_on_after(spec.timeout) as scope:
            return await awaitable
        if scope.cancelled_caught:
            if ctx is not None:
                ctx._cancel()
            raise ToolError(f"Tool '{spec.name}' timed out after {spec.timeout:g} s")
        raise AssertionError("unreachable")  # pragma: no cover

    def _submitted(self, job: Job) -> None:
        """Called after a job is queued: wake the host."""
        self._request_tick()

    async def _run_main(self, spec: ToolSpec, call: Callable[[], Any], ctx: ToolContext | None) -> Any:
        loop = asyncio.get_running_loop()
        job = Job(spec.name, tracing.bind(call), loop, ctx)  # the tool's spans: children of the request's
        self.queue.submit(job)  # ToolError at once when full
        self._submitted(job)
        t0 = loop.time()
        try:
            done, _ = await asyncio.wait((job.future,), timeout=_min(spec.timeout, self.wait_timeout))
            if not done:
                busy, depth, running = self.queue.snapshot()
                if self.queue.withdraw(job):
                    if running is not None:
                        self.queue.mark_wedged(running, f"a queued call to {spec.name!r} gave up")
                    raise ToolError(
                        f"Tool '{spec.name}' timed out before it started: main thread busy for "
                        f"{busy:.1f} s; queue depth {depth}"
                    )
                # It started (or just finished): wait for the rest of the tool's own timeout.
                left = None if spec.timeout is None else max(0.0, spec.timeout - (loop.time() - t0))
                done, _ = await asyncio.wait((job.future,), timeout=left)
                if not done:
                    job.abandoned = True
                    if ctx is not None:
                        ctx._cancel()
                    self.queue.mark_wedged(job, f"its caller timed out after {spec.timeout:g} s")
                    raise ToolError(
                        f"Tool '{spec.name}' timed out after {spec.timeout:g} s on the main thread; "
                        "it cannot be interrupted and is still running (see main_thread in /health)"
                    )
            return job.future.result()
        except anyio.get_cancelled_exc_class():
            # The client cancelled, or the server is stopping: drop a queued job, flag a running one.
            if not self.queue.withdraw(job):
                job.abandoned = True
                if ctx is not None:
                    ctx._cancel()
            raise
