"""Child-process side of subprocess tools: ``python _runner.py [--watch FD] <script> <function>``, arguments
on stdin, or ``python _runner.py --watch FD --exec <command...>`` for a whole-script tool.

Reads ``{"arguments": {...}, "enums": {param: EnumClass}}`` from stdin, imports the script under a private
name (so its ``if __name__ == "__main__"`` block stays quiet), calls the function, and writes one JSON line
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "Type: message"}`` to stdout. Anything the script
prints goes to stderr. Standard library only, and plain syntax, so any host interpreter (mayapy, hython,
Blender's Python) can run it.

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


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1].strip() if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call(script: str, function: str, payload: dict[str, Any]) -> Any:
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
        result = _call(args[0], args[1], payload)
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
