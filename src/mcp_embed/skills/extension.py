"""The SEP-2640 skills extension (``io.modelcontextprotocol/skills``): skill entries for hosts.

A server that serves skills declares the extension with ``directoryRead: true`` and answers:

- ``skills/list`` (``cursor``): one entry per skill, ``{uri, frontmatter, resources}``, paginated;
- ``skills/get`` (``uri``): the entry of the skill whose ``SKILL.md`` is at ``uri``, or -32602;
- ``resources/directory/read`` (``uri``, ``cursor``): the direct children of a skill folder.

``frontmatter`` is the ``SKILL.md`` frontmatter as JSON, read with the YAML 1.2 core schema, as a
host re-reading the file would, by the very function discovery reads it with
(``frontmatter.load_frontmatter``). ``resources`` lists every resource the skill serves (``SKILL.md``
and the files under ``references/`` and ``assets/``, see ``resources.py``) with the SHA-256 digest
and size of the very bytes ``resources/read`` returns. Entries read files only, never scripts: a
skill whose tools were not analysed yet stays that way. A skill over 512 files or 16 MiB is not
served as a skill (its resources still are).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .._jsonsafe import jsonable
from ..errors import McpError
from ..logs import get_logger

if TYPE_CHECKING:
    from ..components import Components
    from ._model import Skill, SkillCatalog

__all__ = [
    "SKILLS_EXTENSION",
    "answer",
    "answer_sync",
]

log = get_logger("skills")

SKILLS_EXTENSION = "io.modelcontextprotocol/skills"
DIRECTORY_MIME = "inode/directory"
PAGE_SIZE = 50  # skills per skills/list page, children per resources/directory/read page
MAX_FILES = 512  # SEP-2640: a skill of more resource entries SHOULD NOT be served
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # SEP-2640: nor one whose files add up to more
INVALID_PARAMS = -32602
METHODS = ("skills/list", "skills/get", "resources/directory/read")


# -- digests ------------------------------------------------------------------------------------

_digests: dict[str, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, digest)
_digests_lock = threading.Lock()
_DIGEST_CACHE_MAX = 20_000


def _file_digest(path: Path) -> tuple[str, int]:
    """``("sha256:<hex>", size)`` of the file's bytes now, re-hashed only when size or mtime changed."""
    key = str(path)
    st = os.stat(path)
    with _digests_lock:
        hit = _digests.get(key)
    if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        return hit[2], hit[0]
    with open(path, "rb") as fh:
        data = fh.read()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with _digests_lock:
        if len(_digests) >= _DIGEST_CACHE_MAX:
            _digests.pop(next(iter(_digests)))
        _digests[key] = (len(data), st.st_mtime_ns, digest)
    return digest, len(data)


# -- frontmatter, as YAML 1.2 reads it ------------------------------------------------------------


def _frontmatter(data: bytes, uri: str) -> dict[str, Any]:
    """The frontmatter of a ``SKILL.md`` (its bytes) as a JSON object; raises :class:`ValueError`."""
    import yaml

    from .frontmatter import load_frontmatter, split_frontmatter

    text = data.decode("utf-8-sig")
    parts = split_frontmatter(text)
    if parts is None or not parts[0].strip():
        raise ValueError(f"{uri} has no frontmatter")
    try:
        loaded = load_frontmatter(parts[0])  # the reading discovery gives Skill.metadata from
    except yaml.YAMLError as exc:
        raise ValueError(f"{uri}: frontmatter is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{uri}: frontmatter is not a mapping")
    out: dict[str, Any] = jsonable(loaded)
    return out


# -- entries --------------------------------------------------------------------------------------


class _NotServed(Exception):
    """The skill exists but is not served as a skill (too big, or its SKILL.md changed)."""


def _entry(skill: Skill) -> dict[str, Any]:
    """The skill entry of ``skill`` now; raises :class:`_NotServed` or :class:`OSError`."""
    from .resources import skill_uri, walk_skill

    uri = skill_uri(skill.name)
    files = walk_skill(skill)[0]
    if len(files) + 1 > MAX_FILES:
        raise _NotServed(f"{uri}: {len(files) + 1} files, more than the {MAX_FILES} a skill may have")
    sizes = sum(os.path.getsize(full) for _, full in files) + os.path.getsize(skill.skill_md)
    if sizes > MAX_TOTAL_BYTES:
        raise _NotServed(f"{uri}: {sizes} bytes in all, more than the {MAX_TOTAL_BYTES} a skill may have")
    with open(skill.skill_md, "rb") as fh:
        data = fh.read(MAX_TOTAL_BYTES + 1)
    try:
        frontmatter = _frontmatter(data, uri)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _NotServed(f"{exc}; reload the skills") from None
    if frontmatter.get("name") != skill.name:
        raise _NotServed(
            f"{uri}: the frontmatter name is now {frontmatter.get('name')!r}, not {skill.name!r}; "
            "reload the skills"
        )
    resources = [{"uri": uri, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}]
    for rel, full in files:
        digest, size = _file_digest(full)
        resources.append({"uri": skill_uri(skill.name, rel), "digest": digest, "size": size})
    return {"uri": uri, "frontmatter": frontmatter, "resources": resources}


# -- cursors --------------------------------------------------------------------------------------


def _cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode("ascii")


def _offset(kind: str, cursor: Any, total: int) -> int:
    if cursor is None:
        return 0
    try:
        got_kind, _, number = base64.urlsafe_b64decode(str(cursor).encode("ascii")).decode().partition(":")
        offset = int(number)
    except (ValueError, UnicodeError):
        offset, got_kind = -1, ""
    if got_kind != kind or not 0 <= offset <= total:
        raise McpError(INVALID_PARAMS, f"Invalid cursor {cursor!r}: pass back a nextCursor of {kind}")
    return offset


# -- the methods ----------------------------------------------------------------------------------


def list_skills(catalog: SkillCatalog | None, cursor: Any = None) -> dict[str, Any]:
    """One ``skills/list`` page: up to :data:`PAGE_SIZE` skills from ``cursor`` on."""
    skills = list(catalog.skills) if catalog is not None else []
    start = _offset("skills", cursor, len(skills))
    end = min(start + PAGE_SIZE, len(skills))
    entries: list[dict[str, Any]] = []
    for skill in skills[start:end]:
        try:
            entries.append(_entry(skill))
        except _NotServed as exc:
            log.warning("skills/list leaves out %s: %s", skill.name, exc)
        except OSError as exc:
            log.warning("skills/list leaves out %s: cannot read it: %s", skill.name, exc)
    out: dict[str, Any] = {"skills": entries}
    if end < len(skills):
        out["nextCursor"] = _cursor("skills", end)
    return out


def get_skill(catalog: SkillCatalog | None, uri: Any) -> dict[str, Any]:
    """The ``skills/get`` result for ``uri``; -32602 when no served skill has its ``SKILL.md`` there."""
    text = str(uri)
    prefix, suffix = "skill://", "/SKILL.md"
    name = text[len(prefix) : -len(suffix)] if text.startswith(prefix) and text.endswith(suffix) else None
    skill = catalog.skill(name) if catalog is not None and name else None
    if skill is None:
        raise McpError(
            INVALID_PARAMS,
            f"Unknown skill: {text} (a skill is addressed by its skill://<name>/SKILL.md URI)",
            {"uri": text},
        )
    try:
        return {"skill": _entry(skill)}
    except (_NotServed, OSError) as exc:
        raise McpError(INVALID_PARAMS, f"Skill not served: {exc}", {"uri": text}) from None


def read_directory(catalog: SkillCatalog | None, uri: Any, cursor: Any = None) -> dict[str, Any]:
    """The ``resources/directory/read`` result: the direct children of a skill folder, paginated."""
    from .resources import file_description, mime_type_of, skill_uri, walk_skill

    text = str(uri)
    name, _, rest = text[len("skill://") :].partition("/") if text.startswith("skill://") else ("", "", "")
    skill = catalog.skill(name) if catalog is not None and name and not text.endswith("/") else None
    if skill is None:
        raise McpError(
            INVALID_PARAMS,
            f"Unknown directory: {text} (skill://<name>[/<folder>], no trailing slash)",
            {"uri": text},
        )
    files, dirs = walk_skill(skill)
    where = "/".join(unquote(p) for p in rest.split("/")) if rest else ""
    if where and where not in dirs:
        known = where == "SKILL.md" or any(rel == where for rel, _ in files)
        what = "is a file, not a directory" if known else "is not a directory of this skill"
        raise McpError(INVALID_PARAMS, f"{text} {what}", {"uri": text})
    children: list[dict[str, Any]] = []
    if not where:
        children.append(
            {
                "uri": skill_uri(skill.name),
                "name": skill.name,
                "description": skill.description,
                "mimeType": "text/markdown",
            }
        )
    prefix = f"{where}/" if where else ""
    for rel in dirs:
        if rel.startswith(prefix) and "/" not in rel[len(prefix) :]:
            children.append(
                {"uri": skill_uri(skill.name, rel), "name": f"{skill.name}/{rel}", "mimeType": DIRECTORY_MIME}
            )
    for rel, full in files:
        if rel.startswith(prefix) and "/" not in rel[len(prefix) :]:
            children.append(
                {
                    "uri": skill_uri(skill.name, rel),
                    "name": f"{skill.name}/{rel}",
                    "description": file_description(skill.name, rel),
                    "mimeType": mime_type_of(str(full)),
                }
            )
    start = _offset("directory", cursor, len(children))
    end = min(start + PAGE_SIZE, len(children))
    out: dict[str, Any] = {"resources": children[start:end]}
    if end < len(children):
        out["nextCursor"] = _cursor("directory", end)
    return out


def answer_sync(catalog: SkillCatalog | None, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The result of one extension ``method`` (without ``resultType`` or cache hints)."""
    if method == "skills/list":
        return list_skills(catalog, params.get("cursor"))
    if method == "skills/get":
        return get_skill(catalog, params.get("uri"))
    if method == "resources/directory/read":
        return read_directory(catalog, params.get("uri"), params.get("cursor"))
    raise McpError(-32601, f"Method not found: {method}")


async def answer(components: Components, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """:func:`answer_sync` for the current catalog of ``components``, on a worker thread (it reads files)."""
    import anyio.to_thread

    catalog = components.skills.catalog if components.skills is not None else None
    return await anyio.to_thread.run_sync(lambda: answer_sync(catalog, method, params))
