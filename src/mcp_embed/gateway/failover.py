"""``serve_one_at_a_time``: one gateway serves; the others wait and take over when it goes.

On one machine the port bind decides: the first to bind the well-known port serves, and every
other retries each ``interval`` (``start()`` raises :class:`PortInUseError` while the port is
taken, so a port in use is told from any other start failure). With a :class:`RedisLease`,
the lease decides first (gateways on several machines), then the port as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import PortInUseError
from ..logs import get_logger

if TYPE_CHECKING:
    from ..handle import ServerHandle
    from .gateway import Gateway
    from .lease import RedisLease

__all__ = ["serve_one_at_a_time"]

log = get_logger("gateway")


def serve_one_at_a_time(
    gateway: Gateway,
    stop: threading.Event,
    *,
    interval: float = 1.0,
    lease: RedisLease | None = None,
    on_standby: Callable[[str], None] = lambda _: None,
    on_serving: Callable[[ServerHandle], None] = lambda _: None,
) -> None:
    """Serve ``gateway`` whenever this process may, until ``stop`` is set.

    ``on_standby(reason)`` is called when this process starts waiting, ``on_serving(handle)``
    when it starts serving. A gateway that loses its lease stops serving and waits again.
    """
    waiting_for: str | None = None
    while not stop.is_set():
        if lease is not None and not lease.held and not lease.acquire():
            if waiting_for != "lease":
                waiting_for = "lease"
                on_standby(f"another gateway holds the lease {lease.key!r}")
            stop.wait(interval)
            continue
        try:
            handle = gateway.start()
        except PortInUseError as exc:
            if waiting_for != "port":
                waiting_for = "port"
                on_standby(f"{exc.host}:{exc.port} is in use (another gateway serves)")
            if lease is not None:
                lease.release()  # let a gateway that can bind have it
            stop.wait(interval)
            continue
        waiting_for = None
        on_serving(handle)
        try:
            while not stop.is_set() and handle.is_running and (lease is None or lease.held):
                stop.wait(min(interval, 0.25))
            if lease is not None and not lease.held and not stop.is_set():
                log.warning("gateway: the lease is no longer held; stopping so another can serve")
        finally:
            gateway.stop()
            if lease is not None:
                lease.release()
