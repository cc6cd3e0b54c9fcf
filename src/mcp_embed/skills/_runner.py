"""Child-process side of subprocess tools: ``python _runner.py <script> <function>``, arguments on stdin.

Reads ``{"arguments": {...}, "enums": {param: EnumClass}}`` from stdin, imports the script under a private
name (so its ``if __name__ == "__main__"`` block stays quiet), calls the function, and writes one JSON line
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "Type: message"}`` to stdout. Anything the script
prints goes to stderr. Standard library only, and plain syntax, so any host interpreter (mayapy, hython,
Blender's Python) can run it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
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


def main(argv: list[str]) -> int:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the script's prints must not corrupt the one JSON result line
    try:
        if len(argv) != 3:
            raise SystemExit("usage: _runner.py <script> <function>")
        payload = json.loads(sys.stdin.read() or "{}")
        result = _call(argv[1], argv[2], payload)
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
