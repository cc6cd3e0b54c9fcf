"""``dispatcher="inline"``: batch and headless hosts (mayapy, hython, ``blender -b``, containers).

There is no UI event loop to hop to, so ``main`` tools run one at a time, in order, on a single
worker thread of their own: the queue's lock serialises them exactly as a main thread would.
The queue's depth, timeouts and ``/health`` report apply as for every other dispatcher.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ._queue import Job, QueueDispatcher

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor


class InlineDispatcher(QueueDispatcher):
    name = "inline"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._executor: ThreadPoolExecutor | None = None

    def _submitted(self, job: Job) -> None:
        # One pump per job, each running at most one job: a withdrawn job leaves a pump that
        # finds nothing to do. One worker thread keeps main-affinity tools strictly serial.
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor  # only once a main tool is called

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-embed-main")
        with contextlib.suppress(RuntimeError):  # shut down: close() failed the job already
            self._executor.submit(self.queue.pump, 0.0, blocking=True)

    def close(self) -> None:
        super().close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
