"""The child process itself: which interpreter runs it, how it is started and connected, and how it
is ended (always reaped, never left a zombie) and its exit described."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ServerStartError
from ...logs import get_logger

if TYPE_CHECKING:
    import socket
    from multiprocessing.connection import Listener, _ConnectionBase

    # A PipeConnection on Windows, a Connection elsewhere: type against their common base.
    Connection = _ConnectionBase

__all__ = ["accept", "describe_exit", "end_process", "python_executable", "spawn"]

log = get_logger("runtime")

# A host application's own executable, which cannot run ``-c``: python_executable must be given.
_APP_EXE = re.compile(r"^(maya(\.bin)?|houdini\w*|happrentice|hindie|nuke[\d.v]*|blender)$", re.IGNORECASE)

# The child's first code: read the bootstrap line, find mcp_embed, hand over. Nothing else runs first.
_STUB = (
    "import sys,json;b=json.loads(sys.stdin.readline());sys.path[:0]=b['path'];"
    "from mcp_embed.runtime.subprocess.child import main;main(b)"
)


def python_executable(configured: str | None) -> str:
    """The interpreter for the child: the configured one, else this one unless it is a DCC's app."""
    if configured:
        return configured
    exe = sys.executable
    stem = os.path.splitext(os.path.basename(exe))[0]
    if not exe or _APP_EXE.match(stem):
        raise ServerStartError(
            f"spawn_mode='subprocess' needs a Python interpreter, and this process runs {exe or '?'!r}: "
            "set McpHttpConfig(python_executable=...) to the application's batch Python "
            "(mayapy, hython, Nuke's python)"
        )
    return exe


def spawn(exe: str, sock: socket.socket, listener: Listener, key: bytes) -> subprocess.Popen[bytes]:
    """Start the child (``exe -c`` the stub) with the socket inherited and the bootstrap on stdin."""
    import mcp_embed

    package_parent = str(Path(mcp_embed.__file__).resolve().parent.parent)
    boot = {
        "address": listener.address,
        "authkey": key.hex(),
        "path": [package_parent],
        "extra_path": [p for p in sys.path if p and os.path.isdir(p)],
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "host_pid": os.getpid(),
    }
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    else:
        kwargs["pass_fds"] = (sock.fileno(),)
    try:
        proc = subprocess.Popen(
            [exe, "-c", _STUB],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            **kwargs,
        )
    except OSError as exc:
        raise ServerStartError(
            f"cannot start the server process with {exe!r}: {exc.strerror or exc}; "
            "set McpHttpConfig(python_executable=...)"
        ) from None
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(boot).encode() + b"\n")
        proc.stdin.close()
    except OSError:
        pass  # it died at once; the accept below sees that
    return proc


def accept(listener: Listener, key: bytes, proc: subprocess.Popen[bytes]) -> Connection | None:
    """The child's connection, or None if it exited first (a watcher wakes ``accept`` then)."""
    from multiprocessing import AuthenticationError
    from multiprocessing.connection import Client

    gone = threading.Event()
    connected = threading.Event()

    def watch() -> None:
        while not connected.is_set():
            if proc.poll() is not None:
                gone.set()
                with contextlib.suppress(Exception):
                    Client(listener.address, authkey=key).close()  # wakes accept()
                return
            connected.wait(0.05)

    threading.Thread(target=watch, name="mcp-embed-accept-watch", daemon=True).start()
    try:
        while True:
            try:
                conn = listener.accept()
            except AuthenticationError:
                log.warning("refused a connection to the server process pipe: wrong key")
                continue
            if gone.is_set():
                conn.close()
                return None
            return conn
    finally:
        connected.set()


def end_process(proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until ``deadline``, then terminate, then kill; always reap (no zombie)."""
    left = deadline - time.monotonic()
    try:
        proc.wait(max(0.0, left * 0.7))
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(max(0.05, deadline - time.monotonic()))
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(OSError):
        proc.kill()
    proc.wait()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code}"
