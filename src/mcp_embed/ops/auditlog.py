"""The audit file: :class:`AuditLog` writes one JSON line per record from a thread of its own.

The request path only builds a small dict and puts it on a queue (no I/O, no hashing, no JSON);
the writer formats, hashes, masks, writes and rotates. ``close()`` drains the queue, so a stop
right after a call loses nothing, and rotation happens between two whole records. Each record is
encoded and written on its own: one that cannot be (whatever a caller sent) never costs another.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import errno
import hashlib
import os
import queue
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._jsonsafe import dumps_bytes, safe_str
from ..components._argerrors import is_secret_key, mask_argument_values
from ..logs import get_logger, redact_text

__all__ = ["AuditLog", "args_sha256", "canonical_json", "default_log_dir", "redact_arguments"]

log = get_logger("audit")

_REDACTED = "[REDACTED]"
ERROR_CHARS = 300
"""An audit record's ``error`` is cut to this many characters."""
_ERROR_SCAN = 65536  # an error text is cut to this before it is masked, then to ERROR_CHARS


# -- arguments -------------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same arguments always give the same bytes.

    Never raises: a lone surrogate is hashed as its JSON escape ``\\udXXX``, an odd value as text.
    """
    return dumps_bytes(value, sort_keys=True, strict=False, exact=True)


def args_sha256(arguments: Mapping[str, Any] | None) -> str:
    """SHA-256 (hex) of the canonical JSON of a call's arguments (``{}`` when there are none)."""
    return hashlib.sha256(canonical_json(arguments or {})).hexdigest()


def redact_arguments(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with secret-looking fields replaced and secret-looking text masked."""
    if _depth > 32:
        return _REDACTED
    if isinstance(value, Mapping):
        return {
            str(k): (_REDACTED if is_secret_key(str(k)) else redact_arguments(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_arguments(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


# -- the file --------------------------------------------------------------------------------------


def default_log_dir(server_name: str) -> Path:
    """``$MCP_EMBED_LOG_DIR`` or the platform's user log folder, then ``mcp-embed/<server_name>``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", server_name).strip("._") or "server"
    base = os.environ.get("MCP_EMBED_LOG_DIR")
    if base:
        return Path(base) / "mcp-embed" / safe
    import platformdirs

    return Path(platformdirs.user_log_dir("mcp-embed", appauthor=False)) / safe


def _rfc3339(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ROTATE = object()
_STOP = object()


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_OPEN_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for a in list(_OPEN_LOGS):
        a.close(timeout=2.0)


atexit.register(_close_all_at_exit)


class AuditLog:
    """An append-only JSONL file written by a thread of its own, with size rotation.

    ``write`` only enqueues. Records are dicts; ``time`` (epoch seconds) is formatted as RFC 3339,
    and ``_args`` (the raw arguments) becomes ``args_sha256`` (and ``arguments``, redacted, when
    ``include_arguments``) in the writer thread, which also masks argument values in ``error``.

    Every record is written, whatever it holds (lone surrogates are kept as JSON escapes, values
    JSON cannot hold become text), or, if the file refuses it, counted in ``lost``, reported to
    ``on_lost`` and in an ERROR line. One record never costs another its place.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int, include_arguments: bool = False) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.include_arguments = include_arguments
        self.batch_delay = 0.05
        self.written = 0
        self.lost = 0
        self.on_lost: Callable[[int], None] | None = None  # told how many records each failure cost
        self.rotations = 0
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._file: Any = None
        self._size = 0
        self._ino: int | None = None
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        _private_dir(path.parent)
        self._open()
        self._thread = threading.Thread(target=self._run, name=f"mcp-embed-audit:{path.name}", daemon=True)
        self._thread.start()
        _OPEN_LOGS.add(self)

    # -- any thread ---------------------------------------------------------------------------------

    def write(self, record: dict[str, Any]) -> None:
        """Queue one record. Cheap and non-blocking; safe from any thread."""
        if not self._closed:
            self._q.put(record)

    def rotate(self, timeout: float = 5.0) -> bool:
        """Rotate now, between two records. Returns once the new file is open."""
        done = _Flush()
        self._q.put(_ROTATE)
        self._q.put(done)
        return done.done.wait(timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until every record queued so far is written and flushed."""
        if self._closed:
            return True
        done = _Flush()
        self._q.put(done)
        return done.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._q.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the audit writer did not finish within %.1f s; records may be missing", timeout)
        _OPEN_LOGS.discard(self)

    @property
    def files(self) -> list[Path]:
        """The current file and its rotated backups, oldest first."""
        out = [self.path.with_name(f"{self.path.name}.{i}") for i in range(self.backups, 0, -1)]
        return [p for p in [*out, self.path] if p.exists()]

    # -- the writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        q = self._q
        stop = False
        try:
            while not stop:
                item = q.get()
                if isinstance(item, dict) and self.batch_delay:
                    # Let records gather: one wake-up a batch, not one a record, keeps this thread
                    # from taking the GIL from the event loop on every call. close() and flush()
                    # still see everything queued before them.
                    time.sleep(self.batch_delay)
                batch = [item]
                with contextlib.suppress(queue.Empty):
                    while len(batch) < 4096:
                        batch.append(q.get_nowait())
                stop = self._write_batch(batch)
        finally:
            with contextlib.suppress(Exception):
                self._file.flush()
                os.fsync(self._file.fileno())
            with contextlib.suppress(Exception):
                self._file.close()
            self._release_waiters()

    def _write_batch(self, batch: list[Any]) -> bool:
        """Write one batch; each record on its own, so one that fails costs only itself. True on stop."""
        stop = False
        problems: dict[str, int] = {}

        def lost(n: int, exc: BaseException) -> None:
            # The type and errno only: a message may quote the record it failed on.
            why = type(exc).__name__
            if isinstance(exc, OSError) and exc.strerror:
                why += f" ({exc.strerror})"
            problems[why] = problems.get(why, 0) + n

        try:
            self._reopen_if_moved()
        except Exception as exc:
            lost(0, exc)
        for item in batch:
            try:
                if item is _STOP:
                    stop = True
                elif item is _ROTATE:
                    self._rotate()
                elif isinstance(item, _Flush):
                    try:
                        self._flush()
                    finally:
                        item.done.set()
                else:
                    self._write(item)
            except _Unwritten as exc:  # buffered records, and this one if it is a record
                lost(exc.records + isinstance(item, dict), exc.__cause__ or exc)
            except Exception as exc:  # a full disk, a rotation that failed, a record that cannot be encoded
                lost(1 if isinstance(item, dict) else 0, exc)
        try:
            self._flush()
        except _Unwritten as exc:
            lost(exc.records, exc.__cause__ or exc)
        if problems:
            self._report(problems)
        return stop

    def _report(self, problems: dict[str, int]) -> None:
        n = sum(problems.values())
        self.lost += n
        why = "; ".join(f"{k}: {v}" for k, v in problems.items())
        log.error("%d audit record(s) lost (%s); %d lost since start, in %s", n, why, self.lost, self.path)
        if n and self.on_lost is not None:
            with contextlib.suppress(Exception):
                self.on_lost(n)

    def _flush(self) -> None:
        """Write what is buffered; the records that did not reach the file are no longer counted written."""
        try:
            self._file.flush()
        except OSError as exc:
            unwritten = self._file.drop()
            self.written -= unwritten
            raise _Unwritten(unwritten) from exc

    def _release_waiters(self) -> None:
        """Wake every flush() and rotate() still queued once the writer has gone."""
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._q.get_nowait()
                if isinstance(item, _Flush):
                    item.done.set()

    def _write(self, record: dict[str, Any]) -> None:
        has_args = "_args" in record
        args = record.pop("_args", None)
        if has_args:
            record["args_sha256"] = args_sha256(args)
            if self.include_arguments:
                record["arguments"] = redact_arguments(args or {})
        error = record.get("error")
        if error:
            text = safe_str(error)[:_ERROR_SCAN]
            text = mask_argument_values(text, args, all_values=not self.include_arguments)
            record["error"] = redact_text(text)[:ERROR_CHARS]
        record["time"] = _rfc3339(record["time"])
        line = dumps_bytes(record) + b"\n"
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        self._file.write(line)
        self._size += len(line)
        self.written += 1

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, 0o600)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)  # an existing file keeps its mode otherwise
        self._file = _AppendFile(fd)
        st = os.fstat(fd)
        self._size = st.st_size
        self._ino = st.st_ino if st.st_ino else None

    def _reopen_if_moved(self) -> None:
        """Follow an external rotation (logrotate ``create``): the path no longer names our file."""
        if self._file.closed:  # a rotation failed half-way: try again
            self._open()
            return
        if self._ino is None:
            return
        try:
            moved = os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            moved = True
        if moved:
            self._flush()
            self._file.close()
            self._open()

    def _rotate(self) -> None:
        self._flush()
        self._file.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            os.truncate(self.path, 0)
        self._open()
        self.rotations += 1


class _Unwritten(Exception):
    """``records`` buffered records did not reach the file (the cause is chained)."""

    def __init__(self, records: int) -> None:
        super().__init__(records)
        self.records = records


class _AppendFile:
    """An ``O_APPEND`` descriptor written one batch per ``write(2)``: whole lines only, so two
    writers on one file (two hosts with the same ``server_name``) never interleave inside a line."""

    __slots__ = ("_chunks", "_cut", "_fd", "_torn")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._chunks: list[bytes] = []
        self._cut = 0  # lines a failed write cut short
        self._torn = False  # the file ends inside a cut line: start the next write with a newline

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def write(self, data: bytes) -> None:
        self._chunks.append(data)

    def flush(self) -> None:
        """Write the buffered lines. On an error, the lines not wholly written stay buffered."""
        if not self._chunks:
            return
        if self._fd < 0:  # never write to a closed number: the process may have reused it
            raise OSError(errno.EBADF, "the audit file is closed")
        lead = b"\n" if self._torn else b""
        data = memoryview(b"".join([lead, *self._chunks]))
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError:
            if done >= len(lead):
                self._torn = False
                self._keep_unwritten(done - len(lead))
            raise
        self._torn = False
        self._chunks.clear()

    def _keep_unwritten(self, done: int) -> None:
        while self._chunks and done >= len(self._chunks[0]):
            done -= len(self._chunks.pop(0))
        if done > 0:
            self._chunks.pop(0)
            self._cut += 1
            self._torn = True

    def drop(self) -> int:
        """Forget the buffered lines; how many lines were not written (cut ones included)."""
        n = len(self._chunks) + self._cut
        self._chunks.clear()
        self._cut = 0
        return n

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1


def _private_dir(path: Path) -> None:
    if sys.platform != "win32":
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o700)
