"""Child-process side of subprocess tools: ``python _runner.py [--watch FD] <script> <function>``, arguments
on stdin, or ``python _runner.py --watch FD --exec <command...>`` for a whole-script tool.

Reads ``{"arguments": {...}, "enums": {param: EnumClass}}`` from stdin, imports the script under a private
name (so its ``if __name__ == "__main__"`` block stays quiet), calls the function, and writes one JSON line
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "Type: message"}`` to stdout. Anything the script
prints goes to stderr. With ``"context": param`` (and ``"tool": name``), the function's ``ToolContext``
parameter gets a :class:`_Context`, whose progress and log entries are lines ``{"mcp-embed": "progress" |
"log", "params": {...}}`` on stdout before the result line. Standard library only, and plain syntax, so any
host interpreter (mayapy, hython, Blender's Python) can run it.

``--watch FD`` (POSIX; see ``_lifetime.py``): this process forks and supervises; the child does the
work. EOF on ``FD`` means the server process died, and the supervisor kills the whole process group.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sys
import threading
from typing import Any

MODULE_NAME = "_mcp_embed_skill_script"
RELAY = "mcp-embed"  # the key of a progress or log line on stdout (the result line has "ok")


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1].strip() if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Context:
    """What a subprocess tool's ``ToolContext`` parameter gets: its progress and log entries go to
    the server as lines on stdout, which the server relays to the client as they come. ``cancelled``
    stays False: a cancel kills this process. Asking the client needs an in-process tool."""

    cancelled = False

    def __init__(self, tool_name: str, out: Any) -> None:
        self.tool_name = tool_name
        self._out = out
        self._lock = threading.Lock()

    def report_progress(self, progress: float, total: Any = None, message: Any = None) -> None:
        self._send("progress", {"progress": progress, "total": total, "message": message})

    def log(self, level: str, data: Any, logger: Any = None) -> None:
        self._send("log", {"level": level, "data": data, "logger": logger})

    def supports(self, capability: str) -> bool:
        return False

    def _asks(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("asking the client (elicit, sample) needs an in-process tool")

    elicit = sample = elicit_blocking = sample_blocking = _asks

    def _send(self, kind: str, params: dict[str, Any]) -> None:
        line = json.dumps({RELAY: kind, "params": params}, default=str)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def _call(script: str, function: str, payload: dict[str, Any], out: Any = None) -> Any:
    # Python put this file's folder first on sys.path; the script must see its own folder there instead,
    # as when it runs by itself, and must not import mcp_embed's modules by their bare names.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    func = getattr(module, function, None)
    if not callable(func):
        raise AttributeError(f"{os.path.basename(script)} has no function {function!r}")
    arguments = dict(payload.get("arguments") or {})
    for name, cls_name in (payload.get("enums") or {}).items():
        cls = getattr(module, cls_name, None)
        if cls is not None and name in arguments and arguments[name] is not None:
            with contextlib.suppress(ValueError, TypeError):
                arguments[name] = cls(arguments[name])
    context = payload.get("context")
    if context:
        arguments[context] = _Context(str(payload.get("tool") or function), out or sys.stdout)
    return func(**arguments)


def _supervise(watch_fd: int, worker: int) -> int:
    """Wait for ``worker`` and exit as it did; kill the whole group if ``watch_fd`` reaches EOF first."""
    if sys.platform == "win32":  # Windows ties the tree with a job object instead
        raise OSError("--watch is POSIX only")
    else:
        devnull = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):  # the worker's pipes are its own: the server reads them to EOF
            os.dup2(devnull, std)

        def watch() -> None:
            try:
                data = os.read(watch_fd, 1)
            except OSError:
                data = b""
            if not data:  # the only writer, the server process, is gone
                os.killpg(os.getpgrp(), signal.SIGKILL)

        threading.Thread(target=watch, daemon=True).start()
        try:
            _, status = os.waitpid(worker, 0)
        except ChildProcessError:
            return 1
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)  # end as the worker ended, so the server reports the same signal
        return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def _exec(command: list[str]) -> int:
    try:
        os.execvp(command[0], command)  # noqa: S606 - the tool's own command, as a list
    except OSError as exc:
        sys.stderr.write(f"cannot start {command[0]!r}: {exc.strerror or exc}\n")
    return 127


def main(argv: list[str]) -> int:
    args = argv[1:]
    if len(args) >= 2 and args[0] == "--watch" and sys.platform != "win32":
        watch_fd = int(args[1])
        args = args[2:]
        worker = os.fork()
        if worker:
            return _supervise(watch_fd, worker)
        os.close(watch_fd)  # only the supervisor watches; nothing the tool starts inherits it
    if args[:1] == ["--exec"] and len(args) > 1:
        return _exec(args[1:])
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the script's prints must not corrupt the one JSON result line
    try:
        if len(args) != 2:
            raise SystemExit("usage: _runner.py [--watch FD] <script> <function>")
        payload = json.loads(sys.stdin.read() or "{}")
        result = _call(args[0], args[1], payload, real_stdout)
        line = json.dumps({"ok": True, "result": result}, default=str)
        code = 0
    except BaseException as exc:  # report everything, even SystemExit, as one readable line
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            line, code = json.dumps({"ok": True, "result": None}), 0
        else:
            line, code = json.dumps({"ok": False, "error": _last_line(exc)}), 1
    real_stdout.write(line + "\n")
    real_stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
