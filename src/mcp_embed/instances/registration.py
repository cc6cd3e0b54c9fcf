"""``Registration``: a running server's own record, kept fresh by a heartbeat thread until closed.

The host never waits on the registry, and the registry never takes the host down: the record is
written by the heartbeat thread (``set_metadata`` only wakes it), and a registry that fails is
logged once as a warning and tried again at every heartbeat.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..logs import get_logger
from .choose import open_registry, registry_ttl
from .record import Instance, Registry

__all__ = ["MAX_METADATA_BYTES", "Registration", "check_metadata", "new_instance", "start_registration"]

log = get_logger("instances")

MAX_METADATA_BYTES = 64 * 1024
"""The largest metadata one record carries, as JSON."""
_FIRST_POLL = 0.05  # seconds between readiness checks before the first record, doubling up to the interval
_JOIN_TIMEOUT = 10.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def check_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON copy of ``values``; ``TypeError`` or ``ValueError`` naming a value that is not JSON."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise TypeError(f"metadata keys are strings, not {type(key).__name__} ({key!r})")
        try:
            text = json.dumps(value, allow_nan=False)
        except TypeError as exc:
            raise TypeError(
                f"metadata {key}={value!r} is not a JSON value ({exc}): use str, int, float, bool, "
                "None, and lists and dicts of them"
            ) from None
        except ValueError as exc:
            raise ValueError(f"metadata {key}={value!r} is not a JSON value: {exc}") from None
        out[key] = json.loads(text)  # a snapshot: the host changing its object later changes nothing
    return out


def _size(metadata: Mapping[str, Any]) -> int:
    return len(json.dumps(dict(metadata), ensure_ascii=False).encode("utf-8"))


def new_instance(
    *,
    server_name: str,
    app_name: str,
    url: str,
    version: str,
    host: str | None = None,
    pid: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Instance:
    """A fresh record for this process: id ``{app_name}-{host}-{pid}-{token}``, started now."""
    host = host or socket.gethostname()
    pid = pid or os.getpid()
    parts = (app_name, host, str(pid), secrets.token_hex(3))
    now = time.time()
    return Instance(
        id="-".join(_UNSAFE.sub("_", p).strip("_.-") or "x" for p in parts),
        server_name=server_name,
        app_name=app_name,
        pid=pid,
        host=host,
        url=url,
        version=version,
        started_at=now,
        heartbeat_at=now,
        metadata=check_metadata(metadata or {}),
    )


class Registration:
    """``instance`` listed in ``registry`` while ``alive()`` says the server serves.

    :meth:`start` writes the record (when alive) and starts a daemon thread that refreshes its
    heartbeat every ``ttl / 3`` seconds; a server found not alive is unlisted until it serves again.
    :meth:`close` stops the thread, removes the record and closes the registry.
    """

    def __init__(
        self,
        registry: Registry,
        instance: Instance,
        *,
        ttl: float,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self.registry = registry
        self.interval = ttl / 3
        self._instance = instance
        self._alive = alive or (lambda: True)
        self._state = threading.Lock()  # the record; held only for an instant
        self._write = threading.Lock()  # one registry call at a time, in order
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._closed = False
        self._listed = False
        self._failing = False
        self._thread: threading.Thread | None = None

    @property
    def id(self) -> str:
        return self._instance.id

    @property
    def instance(self) -> Instance:
        """The record as last written (or about to be)."""
        with self._state:
            return self._instance

    @property
    def listed(self) -> bool:
        """True once the record is written, until the server stops serving or this closes."""
        return self._listed

    def start(self) -> Registration:
        """Write the record now if the server is alive, and start the heartbeat. Never raises for
        a failing registry (that is logged and retried)."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name=f"mcp-embed-registry:{self.id}", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a host that exits without stop(): unlisted at once, not at expiry
        return self

    def set_metadata(self, **values: Any) -> None:
        """Merge ``values`` (JSON values only) into the record's metadata; the heartbeat thread
        writes it at once, so the caller never waits on the registry."""
        checked = check_metadata(values)
        with self._state:
            merged = {**self._instance.metadata, **checked}
            size = _size(merged)
            if size > MAX_METADATA_BYTES:
                raise ValueError(
                    f"instance metadata would be {size} bytes of JSON; at most {MAX_METADATA_BYTES} are kept"
                )
            self._instance = replace(self._instance, metadata=merged)
        self._wake.set()

    def refresh(self) -> bool:
        """Write the record with a new heartbeat now (or remove it while the server is not alive).
        False when the registry failed; the failure is logged, once per outage."""
        with self._write:
            if self._closed:
                return False
            try:
                if self._alive():
                    with self._state:
                        self._instance = record = self._instance.beat(time.time())
                    self.registry.register(record)
                    self._listed = True
                elif self._listed:
                    self.registry.unregister(self.id)
                    self._listed = False
            except Exception as exc:  # the host must never fail because of its listing
                self._failed(exc)
                return False
            if self._failing:
                self._failing = False
                log.warning("the instance registry %r answers again: %s is listed", self.registry, self.id)
            return True

    def _failed(self, exc: Exception) -> None:
        if self._failing:
            log.debug("the instance registry %r still fails: %s", self.registry, exc)
            return
        self._failing = True
        log.warning(
            "instance %s: the instance registry %r failed (%s: %s); trying again every %.3g s",
            self.id,
            self.registry,
            type(exc).__name__,
            exc,
            self.interval,
        )

    def _run(self) -> None:
        pause = min(_FIRST_POLL, self.interval)
        while True:
            waiting = self._listed or self._failing
            self._wake.wait(self.interval if waiting else pause)
            if self._stopped.is_set():
                return
            self._wake.clear()
            self.refresh()
            pause = min(pause * 2, self.interval)

    def close(self) -> None:
        """Stop the heartbeat, remove the record and close the registry. Idempotent."""
        with self._state:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)
        with self._write:
            try:
                self.registry.unregister(self.id)
            except Exception as exc:
                log.warning(
                    "could not remove instance %s from the instance registry %r (%s); it expires on its own",
                    self.id,
                    self.registry,
                    exc,
                )
            self._listed = False
            try:
                self.registry.close()
            except Exception as exc:
                log.debug("closing the instance registry %r: %s", self.registry, exc)


def start_registration(
    *,
    server_name: str,
    app_name: str,
    url: str,
    version: str,
    host: str | None = None,
    redis_url: str | None = None,
    alive: Callable[[], bool] | None = None,
) -> Registration:
    """List this process's server in the registry its settings name (see :func:`open_registry`) and
    keep it listed. Raises for a registry that cannot even be made (redis-py missing, a bad TTL)."""
    ttl = registry_ttl()
    registry = open_registry(redis_url=redis_url, ttl=ttl)
    instance = new_instance(server_name=server_name, app_name=app_name, url=url, version=version, host=host)
    return Registration(registry, instance, ttl=ttl, alive=alive).start()
