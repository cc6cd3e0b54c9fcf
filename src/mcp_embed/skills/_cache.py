"""Parsed skill files, cached by path and ``(mtime_ns, size)``: in memory, and on disk like ``.pyc`` files.

Parsing is most of discovery's cost (``ast.parse`` alone is about half a millisecond for a small script),
so an unchanged file is parsed once per machine rather than once per host start. The disk copy is one
file per set of roots under the user cache folder, in :mod:`marshal` format like a ``.pyc``; it holds parse
results only, never code, and any unreadable, foreign or stale file is ignored.
``MCP_EMBED_SKILL_CACHE_DIR`` moves it (empty: off).
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from .._version import __version__
from ..logs import get_logger
from ._model import SkillProblem
from .frontmatter import SkillHeader
from .infer import ScriptInfo, ToolSpec
from .toolsyaml import ToolDecl

__all__ = ["CACHE_DIR_ENV", "ParseCache", "cache_dir", "clear"]

CACHE_DIR_ENV = "MCP_EMBED_SKILL_CACHE_DIR"
FORMAT = 2  # 2: FunctionInfo.context


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:  # zipped or frozen: the versions alone must do
        return -1


@functools.cache
def _stamp() -> str:
    """What a cache file must match: format, package and Python versions, and the parsers' own files."""
    here = os.path.dirname(__file__)
    parsers = (
        "frontmatter.py",
        "_flatyaml.py",
        "infer.py",
        "typeschema.py",
        "docstrings.py",
        "toolsyaml.py",
        "naming.py",
        "_model.py",
        "_cache.py",
    )
    mtimes = ",".join(str(_mtime(os.path.join(here, name))) for name in parsers)
    return f"{FORMAT}/{__version__}/{sys.version_info[0]}.{sys.version_info[1]}/{mtimes}"


_MAX_ENTRIES = 50_000
_T = TypeVar("_T")
_log = get_logger("skills.cache")

Key = tuple[str, str]
# (mtime_ns, size, the parse result as marshal bytes)
_MEMORY: dict[Key, tuple[int, int, bytes]] = {}
# file -> the (mtime_ns, size) of each entry it holds, for the files this process has read or written
_ON_DISK: dict[str, dict[Key, tuple[int, int]]] = {}
_LOCK = threading.Lock()


def clear() -> None:
    """Forget everything parsed in this process; the disk copy is read again on the next discovery."""
    with _LOCK:
        _MEMORY.clear()
        _ON_DISK.clear()


def cache_dir(env: Mapping[str, str]) -> str | None:
    """The disk cache folder: ``$MCP_EMBED_SKILL_CACHE_DIR`` (empty: none), else the user cache folder."""
    value = env.get(CACHE_DIR_ENV)
    if value is not None:
        return value or None
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir("mcp-embed"), "skills")


# -- plain-data forms of the parse results (tuples, for marshal) ------------------------------------------


def _row(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in fields(obj))


def _problem_rows(problems: Sequence[SkillProblem]) -> tuple[tuple[Any, ...], ...]:
    return tuple(_row(p) for p in problems)


def _problems(rows: Sequence[Sequence[Any]]) -> list[SkillProblem]:
    return [SkillProblem(*p) for p in rows]


def encode(kind: str, value: Any) -> bytes:
    """One parse result as :mod:`marshal` bytes (plain tuples, dicts and strings)."""
    if kind == "skill":
        header, problems = value
        data: Any = (None if header is None else _row(header), _problem_rows(problems))
    elif kind == "tools":
        decls, problems = value
        data = (None if decls is None else tuple(_row(d) for d in decls), _problem_rows(problems))
    else:
        info: ScriptInfo = value
        specs = tuple((*spec[:5], _problem_rows(spec.problems), *spec[6:]) for spec in info.specs)
        # The functions matter only to tools.yaml merges: a blob of their own, unpacked on first use.
        rows = marshal.dumps(info.function_rows())
        data = (rows, info.exports, _problem_rows(info.problems), info.ok, specs)
    return marshal.dumps(data)


def decode(kind: str, blob: bytes) -> Any:
    """A fresh parse result from :func:`encode`'s bytes; raises on anything malformed."""
    data = marshal.loads(blob)  # noqa: S302 - bytes this module wrote, like a .pyc
    if kind == "skill":
        header, problems = data
        return (None if header is None else SkillHeader(*header)), _problems(problems)
    if kind == "tools":
        decls, problems = data
        return (None if decls is None else [ToolDecl(*d) for d in decls]), _problems(problems)
    rows, exports, problems, ok, specs = data
    return ScriptInfo(
        None,
        exports,
        tuple(_problems(problems)),
        bool(ok),
        tuple(ToolSpec._make((*spec[:5], tuple(_problems(spec[5])), *spec[6:])) for spec in specs),
        rows,
    )


class ParseCache:
    """The files one discovery reads. ``get`` parses only what changed; ``save`` persists what was used.

    Memory and disk hold :mod:`marshal` bytes, so every discovery gets fresh objects that no other catalog
    shares, at the price of one C-speed ``marshal.loads`` per file.
    """

    def __init__(self, directory: str | None, identity: Sequence[str]) -> None:
        self.file: str | None = None
        if directory:
            digest = hashlib.sha1("\0".join(identity).encode("utf-8", "surrogatepass"), usedforsecurity=False)
            self.file = os.path.join(directory, f"{digest.hexdigest()[:20]}.cache")
        self.used: dict[Key, tuple[int, int]] = {}
        self.changed = False

    def get(self, kind: str, path: str, stat: os.stat_result, parse: Callable[[], _T]) -> _T:
        """The parse result for ``path``, from the cache when its mtime and size still match."""
        key = (kind, path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        self.used[key] = stamp
        hit = _MEMORY.get(key)
        if hit is not None and (hit[0], hit[1]) == stamp:
            try:
                cached: _T = decode(kind, hit[2])
                return cached
            except Exception as exc:  # a damaged entry is only a miss
                _log.debug("ignoring cached %s: %s", path, exc)
        value = parse()
        self.changed = True
        try:
            blob = encode(kind, value)
        except ValueError:  # YAML can hold what marshal cannot (dates) inside declared schemas
            _MEMORY.pop(key, None)
            return value
        with _LOCK:
            if len(_MEMORY) >= _MAX_ENTRIES:
                _MEMORY.clear()
            _MEMORY[key] = (stamp[0], stamp[1], blob)
        return value

    def load(self) -> None:
        """Fill memory from the disk copy, once per process and file."""
        if self.file is None or self.file in _ON_DISK:
            return
        with _LOCK:
            _ON_DISK[self.file] = {}
        try:
            with open(self.file, "rb") as fh:
                # Like a .pyc: plain data from the user's own cache folder, with a version stamp.
                stamp, entries = marshal.load(fh)  # noqa: S302
            if stamp != _stamp():
                return
            loaded: dict[Key, tuple[int, int, bytes]] = {}
            for kind, path, mtime, size, blob in entries:
                if not (isinstance(mtime, int) and isinstance(size, int) and isinstance(blob, bytes)):
                    raise TypeError("malformed entry")
                loaded[(str(kind), str(path))] = (mtime, size, blob)
        except FileNotFoundError:
            return
        except Exception as exc:  # a damaged or foreign cache is only a miss
            _log.debug("ignoring skill cache %s: %s", self.file, exc)
            return
        with _LOCK:
            for key, entry in loaded.items():
                _MEMORY.setdefault(key, entry)
            _ON_DISK[self.file] = {key: (entry[0], entry[1]) for key, entry in loaded.items()}

    def save(self, keep: tuple[str, ...] = ()) -> None:
        """Write the entries this discovery used when they differ from the disk copy; failures are logged.

        Entries of the disk copy under a ``keep`` folder stay even when unused: a lazy discovery analyses
        scripts on demand, and a script another run analysed must not be dropped just because this one
        has not needed it yet.
        """
        if self.file is None:
            return
        disk = _ON_DISK.get(self.file, {})
        if not self.changed and all(disk.get(key) == stamp for key, stamp in self.used.items()):
            return
        entries = dict(self.used)
        if keep:
            for key, stamp in disk.items():
                if key not in entries and key[1].startswith(keep):
                    entries[key] = stamp
        rows = []
        for key, stamp in entries.items():
            entry = _MEMORY.get(key)
            if entry is not None and (entry[0], entry[1]) == stamp:
                rows.append((key[0], key[1], stamp[0], stamp[1], entry[2]))
        try:
            os.makedirs(os.path.dirname(self.file), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.file), suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    marshal.dump((_stamp(), tuple(rows)), fh)
                os.replace(tmp, self.file)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            _log.debug("cannot write skill cache %s: %s", self.file, exc)
            return
        with _LOCK:
            _ON_DISK[self.file] = {(row[0], row[1]): (row[2], row[3]) for row in rows}
        self.changed = False
