"""``dispatcher="manual"``: the host drives the queue from its own loop.

Call ``handle.pump(budget_ms=8)`` from the host's main thread once per frame, tick or idle
callback. Each call runs queued ``main`` tools until the budget is spent (at least one job when
any is waiting) and returns how many ran.
"""

from __future__ import annotations

from ._queue import QueueDispatcher


class ManualDispatcher(QueueDispatcher):
    name = "manual"

    def _request_tick(self) -> None:
        """Nothing to wake: the host calls ``pump`` on its own schedule."""
