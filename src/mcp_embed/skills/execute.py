"""Running skill tools: argument validation, in-process calls, and subprocesses with a hard timeout.

In-process scripts are imported on their first call under a private module name, cached, and imported
again when their file's mtime or size changes. Subprocess tools run ``[interpreter, _runner.py, script,
function]`` with the arguments as JSON on stdin; a timeout or a cancel kills the whole process tree,
and the tree never outlives this process (``_lifetime.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from .._jsonsafe import jsonable
from ..components._argerrors import schema_error_message, schema_field
from ..errors import ToolError
from ..logs import get_logger
from ._lifetime import start_tree
from ._runner import RELAY
from .errors import DEFAULT_SUBPROCESS_TIMEOUT, SkillArgumentError, SkillToolError

if TYPE_CHECKING:
    from ..context import ToolContext
    from ._model import SkillTool

__all__ = ["clear_module_cache", "invoke_tool", "validate_arguments"]

log = get_logger("skills")
T = TypeVar("T")

RUNNER = str(Path(__file__).with_name("_runner.py"))
_STDERR_LINES = 5
_STDERR_CHARS = 1000
_REAP_SECONDS = 5.0
_CANCEL_POLL = 0.1  # how often a running subprocess tool checks whether its call was cancelled
_RELAY_LINE = f'{{"{RELAY}":'.encode()  # how a progress or log line of the runner starts

_MODULES: dict[str, tuple[int, int, ModuleType]] = {}
_MODULES_LOCK = threading.RLock()  # re-entrant: a script may call another skill tool while importing


# -- validation


def _validator(tool: SkillTool) -> Any:
    with tool._lock:
        if tool._validator is None:
            from jsonschema import Draft202012Validator

            tool._validator = Draft202012Validator(tool.input_schema)
        return tool._validator


def validate_arguments(tool: SkillTool, arguments: Any) -> None:
    """Raise :class:`SkillArgumentError` naming the first bad field when ``arguments`` break the schema."""
    if not isinstance(arguments, dict):
        raise SkillArgumentError(
            tool.name, "", f"arguments must be an object, not {type(arguments).__name__}"
        )
    from jsonschema import SchemaError
    from jsonschema.exceptions import best_match

    try:
        error = best_match(_validator(tool).iter_errors(arguments))
    except SchemaError as exc:
        raise SkillToolError(tool.name, f"the tool's input schema is invalid: {exc.message}") from None
    if error is not None:
        raise SkillArgumentError(tool.name, schema_field(error), schema_error_message(error))


# -- results


def _jsonable(value: Any) -> Any:
    try:
        return jsonable(value)
    except ValueError as exc:
        raise ValueError(f"the result cannot be converted to JSON: {exc}") from None


def _exception_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1].strip() if lines else ""
    if isinstance(exc, ToolError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- in-process


def _module_name(path: str) -> str:
    stem = re.sub(r"\W", "_", Path(path).stem)
    digest = hashlib.sha1(path.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()[:10]
    return f"_mcp_embed_skill_{digest}_{stem}"


def clear_module_cache() -> None:
    """Forget every imported in-process script; the next call imports it again."""
    with _MODULES_LOCK:
        for _mtime, _size, module in _MODULES.values():
            sys.modules.pop(module.__name__, None)
        _MODULES.clear()


def load_script(path: Path) -> ModuleType:
    """The script at ``path`` as a module, imported again whenever its mtime or size changed.

    The source is compiled from the bytes just read, never from a ``__pycache__`` file, so an edit is seen
    even within the same second, and nothing is written into the skill folder.
    """
    key = str(path)
    with _MODULES_LOCK:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            hit = _MODULES.get(key)
            if hit is not None and hit[0] == stat.st_mtime_ns and hit[1] == stat.st_size:
                return hit[2]
            source = fh.read()
        name = _module_name(key)
        spec = importlib.util.spec_from_file_location(name, key)
        if spec is None:
            raise ImportError(f"cannot load {path.name}")
        module = importlib.util.module_from_spec(spec)
        code = compile(source, key, "exec", dont_inherit=True)
        previous = sys.modules.get(name)
        sys.modules[name] = module
        try:
            exec(code, module.__dict__)  # noqa: S102 - running the skill's own script is the point
        except BaseException:
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
            raise
        _MODULES[key] = (stat.st_mtime_ns, stat.st_size, module)
        return module


def _coerce_enums(module: ModuleType, tool: SkillTool, arguments: dict[str, Any]) -> dict[str, Any]:
    if not tool.enum_params:
        return arguments
    arguments = dict(arguments)
    for param, cls_name in tool.enum_params.items():
        cls = getattr(module, cls_name, None)
        if cls is not None and arguments.get(param) is not None:
            with contextlib.suppress(ValueError, TypeError):  # a union with other types: pass it on raw
                arguments[param] = cls(arguments[param])
    return arguments


def _run_in_process(tool: SkillTool, arguments: dict[str, Any], ctx: ToolContext | None = None) -> Any:
    if tool.source_file is None or tool.function is None:
        raise SkillToolError(tool.name, "an in-process tool needs a script and a function")
    try:
        module = load_script(tool.source_file)
        func = getattr(module, tool.function, None)
        if not callable(func):
            raise SkillToolError(tool.name, f"{tool.source_file.name} has no function {tool.function!r}")
        kwargs = _coerce_enums(module, tool, arguments)
        if tool.context_param is not None:
            if ctx is None:
                from ..context import ToolContext

                ctx = ToolContext(tool_name=tool.name)  # no call behind it: progress and logs go nowhere
            kwargs = {**kwargs, tool.context_param: ctx}
        result = func(**kwargs)
        return _jsonable(result)
    except SkillToolError:
        raise
    except (Exception, SystemExit) as exc:  # the script's failure becomes the tool's error; the host lives on
        raise SkillToolError(tool.name, _exception_line(exc)) from None


# -- subprocess


def _script_command(script: Path, interpreter: str) -> list[str]:
    suffix = script.suffix.lower()
    if suffix in (".bat", ".cmd"):
        return ["cmd", "/c", str(script)]
    if suffix == ".ps1":
        return ["powershell", "-NoProfile", "-ExecutionPolicy", "Bypass", "-File", str(script)]
    if suffix == ".sh":
        return ["sh", str(script)]
    return [interpreter, str(script)]


def stderr_summary(text: str) -> str:
    """The last few lines of a child's stderr, with any traceback reduced to its final line."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            lines = [*lines[:index], lines[-1].strip()]
            break
    return "\n".join(lines[-_STDERR_LINES:])[-_STDERR_CHARS:]


def _last_json_line(stdout: str) -> tuple[bool, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.strip():
            try:
                return True, json.loads(line)
            except ValueError:
                return False, None
    return False, None


def _run_subprocess(
    tool: SkillTool,
    arguments: dict[str, Any],
    cancelled: Callable[[], bool] | None = None,
    ctx: ToolContext | None = None,
) -> Any:
    if tool.source_file is None:
        raise SkillToolError(tool.name, "a subprocess tool needs a script")
    interpreter = tool.interpreter or sys.executable
    if tool.function is not None:
        script_args = [str(tool.source_file), tool.function]
        payload: Any = {"arguments": arguments, "enums": tool.enum_params}
        if tool.context_param is not None:
            payload |= {"context": tool.context_param, "tool": tool.name}
    else:
        script_args = ["--exec", *_script_command(tool.source_file, interpreter)]
        payload = arguments

    def command(watch: list[str]) -> list[str]:
        if watch or tool.function is not None:
            return [interpreter, RUNNER, *watch, *script_args]
        return script_args[1:]  # Windows: a whole script runs as itself, its job object ties it here

    timeout = tool.timeout or DEFAULT_SUBPROCESS_TIMEOUT
    try:
        tree = start_tree(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(tool.source_file.parent),
        )
    except OSError as exc:
        what = command([])[0] if sys.platform == "win32" else interpreter
        raise SkillToolError(tool.name, f"cannot start {what!r}: {exc.strerror or exc}") from None
    proc = tree.proc
    killed = False
    data = json.dumps(payload).encode("utf-8")
    relay = _Relay(proc, data, ctx) if tool.context_param is not None and tool.function is not None else None
    try:
        if relay is not None:
            out, err = relay.wait(timeout, cancelled)
        else:
            out, err = _communicate(proc, data, timeout, cancelled)
    except (subprocess.TimeoutExpired, _Cancelled) as stop:
        tree.kill()
        killed = True
        if relay is not None:
            out, err = relay.collect()
        else:
            try:
                out, err = proc.communicate(timeout=_REAP_SECONDS)
            except subprocess.TimeoutExpired:  # a grandchild escaped the group and holds the pipes open
                out, err = b"", b""
        if isinstance(stop, _Cancelled):
            raise SkillToolError(tool.name, "the call was cancelled; the process tree was killed") from None
        summary = stderr_summary(err.decode("utf-8", "replace"))
        detail = f"; stderr: {summary}" if summary else ""
        raise SkillToolError(
            tool.name, f"timed out after {timeout:g} s; the process tree was killed{detail}", timed_out=True
        ) from None
    finally:
        if proc.poll() is None:
            tree.kill()
            killed = True
            proc.wait()
        tree.release(killed=killed)
    stdout = out.decode("utf-8", "replace")
    summary = stderr_summary(err.decode("utf-8", "replace"))
    parsed, value = _last_json_line(stdout)
    if tool.function is not None and parsed and isinstance(value, dict) and "ok" in value:
        if value["ok"]:
            return value.get("result")
        raise SkillToolError(tool.name, str(value.get("error") or "the script failed"))
    if proc.returncode == 127 and summary.startswith("cannot start "):  # the runner's exec failed
        raise SkillToolError(tool.name, summary)
    if proc.returncode != 0:
        how = (
            f"was killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited with code {proc.returncode}"
        )
        raise SkillToolError(tool.name, f"the script {how}" + (f": {summary}" if summary else ""))
    if tool.function is not None:
        raise SkillToolError(tool.name, "the runner printed no result" + (f": {summary}" if summary else ""))
    return value if parsed else stdout.strip()


class _Cancelled(Exception):
    pass


class _Relay:
    """A runner whose function takes a ``ToolContext``: its progress and log lines on stdout are
    passed to ``ctx`` as they come (by a reader thread), the rest kept, as ``communicate`` would."""

    def __init__(self, proc: subprocess.Popen[bytes], payload: bytes, ctx: ToolContext | None) -> None:
        self.proc, self.ctx = proc, ctx
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._threads = [
            threading.Thread(target=target, args=args, daemon=True, name="mcp-embed-skill-relay")
            for target, args in ((self._feed, (payload,)), (self._read_out, ()), (self._read_err, ()))
        ]
        for thread in self._threads:
            thread.start()

    def _feed(self, payload: bytes) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):  # the child exited without reading: its result says why
            self.proc.stdin.write(payload)
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not (line.startswith(_RELAY_LINE) and self._relay(line)):
                self._out.append(line)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self._err.append(self.proc.stderr.read())

    def _relay(self, line: bytes) -> bool:
        try:
            message = json.loads(line)
            kind, params = message[RELAY], message["params"]
        except (ValueError, KeyError, TypeError):
            return False
        ctx = self.ctx
        if ctx is None:
            return True
        try:
            if kind == "progress":
                ctx.report_progress(params.get("progress"), params.get("total"), params.get("message"))
            elif kind == "log":
                ctx.log(params.get("level"), params.get("data"), params.get("logger"))
        except (ValueError, TypeError) as exc:  # a bad level or value from the script: said, not sent
            log.warning("skill tool %s: cannot relay its %s: %s", ctx.tool_name, kind, exc)
        return True

    def wait(self, timeout: float, cancelled: Callable[[], bool] | None) -> tuple[bytes, bytes]:
        """Wait for the child as ``_communicate`` does (``TimeoutExpired``, ``_Cancelled``)."""
        _until(self.proc, lambda wait: self.proc.wait(timeout=wait), timeout, cancelled)
        return self.collect()

    def collect(self) -> tuple[bytes, bytes]:
        """What the child wrote, once its pipes close (a grandchild holding them: what came so far)."""
        for thread in self._threads:
            thread.join(timeout=_REAP_SECONDS)
        return b"".join(self._out), b"".join(self._err)


def _communicate(
    proc: subprocess.Popen[bytes], payload: bytes, timeout: float, cancelled: Callable[[], bool] | None
) -> tuple[bytes, bytes]:
    """``proc.communicate`` until ``timeout`` (``TimeoutExpired``), checking ``cancelled`` as it waits."""
    data: list[bytes | None] = [payload]

    def step(wait: float) -> tuple[bytes, bytes]:
        sent, data[0] = data[0], None  # written (or being written): communicate() resumes where it was
        return proc.communicate(sent, timeout=wait)

    return _until(proc, step, timeout, cancelled)


def _until(
    proc: subprocess.Popen[bytes],
    step: Callable[[float], T],
    timeout: float,
    cancelled: Callable[[], bool] | None,
) -> T:
    """``step(seconds)`` (which raises ``TimeoutExpired`` when they pass) until it returns or
    ``timeout`` is up (``TimeoutExpired``), checking ``cancelled`` between steps (``_Cancelled``)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        try:
            return step(min(left, _CANCEL_POLL) if cancelled else left)
        except subprocess.TimeoutExpired:
            if cancelled is not None and cancelled():
                raise _Cancelled from None


def invoke_tool(
    tool: SkillTool,
    arguments: dict[str, Any],
    cancelled: Callable[[], bool] | None = None,
    ctx: ToolContext | None = None,
) -> Any:
    """Validate ``arguments``, run ``tool`` where its execution mode says, and return its JSON-able result.

    ``cancelled`` (polled while a subprocess runs) kills the subprocess's tree once it returns true;
    ``ctx`` goes to an in-process function's ``ToolContext`` parameter.
    """
    validate_arguments(tool, arguments)
    if tool.execution == "subprocess":
        return _run_subprocess(tool, arguments, cancelled, ctx)
    return _run_in_process(tool, arguments, ctx)
