"""``FileRegistry``: one JSON file per running instance, in a folder of this user's.

The embedded default. Each record is written whole to a temporary file in the same folder and
moved over the old one (``os.replace``), so a reader sees the old record or the new one, never
half of either. ``list()`` drops what is not alive: a record whose heartbeat is older than the TTL,
or (same machine) whose pid is dead. Files it cannot read as a record are skipped, never fatal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path

from ..logs import get_logger
from .record import DEFAULT_TTL, Instance

__all__ = ["FOLDER_ENV", "FileRegistry", "default_folder", "pid_alive"]

log = get_logger("instances")

FOLDER_ENV = "MCP_EMBED_REGISTRY_DIR"
_SUFFIX = ".json"
_TEMP_PREFIX = ".tmp-"
# An id becomes a file name: nothing that could leave the folder or upset a file system.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def default_folder() -> Path:
    """``$MCP_EMBED_REGISTRY_DIR``, else ``instances`` in the user's runtime folder.

    The runtime folder is ``$XDG_RUNTIME_DIR/mcp-embed`` on Linux, ``~/Library/Caches/TemporaryItems/
    mcp-embed`` on macOS and ``%LOCALAPPDATA%\\Temp\\mcp-embed`` on Windows. Where it cannot be
    created (no usable runtime folder, as in some containers) the user's state folder is used.
    Every process of one user computes the same folder.
    """
    override = os.environ.get(FOLDER_ENV)
    if override:
        return Path(override)
    import platformdirs

    with warnings.catch_warnings():  # platformdirs warns about a missing $XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        runtime = Path(platformdirs.user_runtime_dir("mcp-embed", appauthor=False)) / "instances"
    try:
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return Path(platformdirs.user_state_dir("mcp-embed", appauthor=False)) / "instances"
    return runtime


class FileRegistry:
    """Instances as ``<id>.json`` files in ``folder``; records older than ``ttl`` seconds are dead."""

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        ttl: float = DEFAULT_TTL,
        *,
        host: str | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"the registry TTL must be a positive number of seconds, not {ttl!r}")
        self.folder = Path(folder) if folder is not None else default_folder()
        self.ttl = float(ttl)
        #: This machine's name: only records of this host have their pid checked.
        self.host = host or socket.gethostname()

    def __repr__(self) -> str:
        return f"FileRegistry({str(self.folder)!r})"

    def _path(self, instance_id: str) -> Path:
        if not _SAFE_ID.match(instance_id):
            raise ValueError(
                f"instance id {instance_id!r} cannot name a file: use letters, digits, '.', '_' and '-'"
            )
        return self.folder / (instance_id + _SUFFIX)

    def register(self, instance: Instance) -> None:
        target = self._path(instance.id)
        data = json.dumps(instance.to_json(), ensure_ascii=False, allow_nan=False).encode("utf-8")
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_SUFFIX, dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            _replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def unregister(self, instance_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(instance_id).unlink()

    def list(self) -> list[Instance]:
        try:
            entries = sorted(self.folder.glob("*" + _SUFFIX))
        except OSError:
            return []
        now = time.time()
        found: list[Instance] = []
        for path in entries:
            if path.name.startswith(_TEMP_PREFIX):
                continue  # a write in progress (or one a crash left behind)
            raw, instance = _read(path)
            if instance is None:
                continue
            if instance.id + _SUFFIX != path.name:
                log.debug("skipped %s: it holds the record of %r", path, instance.id)
                continue
            dead = self._why_dead(instance, now)
            if dead is not None:
                log.debug("removed instance %s: %s", instance.id, dead)
                _remove_if_unchanged(path, raw)
                continue
            found.append(instance)
        found.sort(key=lambda i: (i.started_at, i.id))
        return found

    def _why_dead(self, instance: Instance, now: float) -> str | None:
        age = now - instance.heartbeat_at
        if age > self.ttl:
            return f"no heartbeat for {age:.1f} s (TTL {self.ttl:g} s)"
        if instance.host == self.host and not pid_alive(instance.pid):
            return f"process {instance.pid} is gone"
        return None

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""


def _read(path: Path) -> tuple[bytes, Instance | None]:
    """The file's bytes and its record, or None when it is not one (torn, foreign, unreadable)."""
    try:
        raw = path.read_bytes()
    except OSError:  # removed meanwhile, a folder named *.json, no permission
        return b"", None
    try:
        return raw, Instance.from_json(json.loads(raw.decode("utf-8")))
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.debug("skipped %s: not an instance record (%s)", path, exc)
        return raw, None


def _remove_if_unchanged(path: Path, raw: bytes) -> None:
    # The instance may have rewritten its record since it was read: keep a fresh one.
    with contextlib.suppress(OSError):
        if path.read_bytes() == raw:
            path.unlink()


def _replace(temp: str, target: Path) -> None:
    if sys.platform != "win32":
        os.replace(temp, target)
        return
    # Windows refuses to replace a file another process has open (a reader, an antivirus) for a
    # moment: try again, briefly.
    for attempt in range(20):
        try:
            os.replace(temp, target)
            return
        except PermissionError:
            if attempt == 19:
                raise
            time.sleep(0.01 * (attempt + 1))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie counts as gone)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    except OSError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Linux: the process exited and waits for its parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


if sys.platform == "win32":

    def _windows_pid_alive(pid: int) -> bool:
        # os.kill(pid, 0) on Windows would terminate the process: ask the kernel instead.
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.OpenProcess.restype = wintypes.HANDLE
        kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
        kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
        kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
        query_limited_information, still_active, access_denied = 0x1000, 259, 5
        handle = kernel32.OpenProcess(query_limited_information, False, pid)
        if not handle:
            return bool(ctypes.get_last_error() == access_denied)  # it exists, we may not look
        try:
            code = wintypes.DWORD()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True  # cannot tell: let the heartbeat decide
            return bool(code.value == still_active)
        finally:
            kernel32.CloseHandle(handle)
