"""Skill instructions and reference files as MCP resources, read with path safety.

URIs are stable and derived from the skill's name and the file's place in it:

- ``skill://<name>/SKILL.md``: the whole ``SKILL.md``, frontmatter included, byte for byte;
- ``skill://<name>/references/<path>`` and ``skill://<name>/assets/<path>``: the files in those folders.

A text file is read as UTF-8 with nothing stripped (a byte-order mark stays), so its UTF-8 bytes are
the file's: the digests ``skills/list`` advertises (``extension.py``) hold for what this returns.
A URI with ``..``, or a file that resolves (through a symlink) outside its skill folder, is refused.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from .._jsonsafe import escape_surrogates
from ._model import Skill, SkillCatalog, SkillResourceError
from .frontmatter import split_frontmatter

__all__ = [
    "SCHEME",
    "SkillResource",
    "SkillResourceContent",
    "list_skill_resources",
    "read_skill_instructions",
    "read_skill_resource",
    "skill_uri",
    "walk_skill",
]

SCHEME = "skill://"
INSTRUCTIONS = "SKILL.md"
FOLDERS = ("references", "assets")
MAX_BYTES = 16 * 1024 * 1024
_TEXT_SUFFIXES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".txt": "text/plain",
    ".py": "text/x-python",
    ".json": "application/json",
    ".csv": "text/csv",
    ".usda": "text/plain",
    ".mel": "text/plain",
}


@dataclass(frozen=True)
class SkillResource:
    """One resource of one skill, as ``resources/list`` shows it."""

    uri: str
    name: str
    description: str
    mime_type: str
    skill: str
    path: Path
    size: int | None = None


@dataclass(frozen=True)
class SkillResourceContent:
    """What ``resources/read`` returns: ``text`` for text files, ``blob`` for the rest."""

    uri: str
    mime_type: str
    text: str | None = None
    blob: bytes | None = None


def mime_type_of(path: str) -> str:
    """The MIME type a skill file is served with (text types for the usual source suffixes)."""
    suffix = os.path.splitext(path)[1].lower()
    return _TEXT_SUFFIXES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in {"application/json", "application/yaml", "application/xml"}


def _within(path: str, folder: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, base]) == base


def _skills(source: SkillCatalog | Iterable[Skill]) -> list[Skill]:
    return list(source.skills if isinstance(source, SkillCatalog) else source)


def walk_skill(skill: Skill) -> tuple[list[tuple[str, Path]], list[str]]:
    """The files a skill serves besides ``SKILL.md`` and the folders holding them, in a stable order.

    Files are ``(path relative to the skill, full path)``; folders are relative paths (``references``,
    ``references/deep``). Hidden entries, symlinked folders and files resolving outside the skill are
    left out.
    """
    base = str(skill.path)
    files: list[tuple[str, Path]] = []
    dirs: list[str] = []
    for folder in FOLDERS:
        top = os.path.join(base, folder)
        if not os.path.isdir(top) or not _within(top, base):
            continue
        dirs.append(folder)
        for dirpath, dirnames, filenames in os.walk(top):  # symlinked folders are not entered
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and not os.path.islink(os.path.join(dirpath, d))
            )
            dirs.extend(Path(os.path.relpath(os.path.join(dirpath, d), base)).as_posix() for d in dirnames)
            for filename in sorted(filenames):
                full = os.path.join(dirpath, filename)
                if filename.startswith(".") or not _within(full, base) or not os.path.isfile(full):
                    continue
                files.append((Path(os.path.relpath(full, base)).as_posix(), Path(full)))
    return files, dirs


def list_skill_resources(source: SkillCatalog | Iterable[Skill]) -> list[SkillResource]:
    """Every resource of every skill: its ``SKILL.md`` first, then its references and assets.

    The ``SKILL.md`` resource is named after the skill and described by its frontmatter description.
    """
    resources: list[SkillResource] = []
    for skill in _skills(source):
        resources.append(
            SkillResource(
                uri=skill_uri(skill.name),
                name=skill.name,
                description=skill.description,
                mime_type="text/markdown",
                skill=skill.name,
                path=skill.skill_md,
            )
        )
        for rel, full in walk_skill(skill)[0]:
            resources.append(
                SkillResource(
                    uri=skill_uri(skill.name, rel),
                    name=escape_surrogates(f"{skill.name}/{rel}"),
                    description=escape_surrogates(file_description(skill.name, rel)),
                    mime_type=mime_type_of(str(full)),
                    skill=skill.name,
                    path=full,
                    size=os.path.getsize(full),
                )
            )
    return resources


def skill_uri(skill: str, rel: str = INSTRUCTIONS) -> str:
    """The URI of ``rel`` (a path relative to the skill folder; its ``SKILL.md`` by default).

    The path's own bytes are percent-encoded (``os.fsencode``), so a file name that is not valid
    UTF-8 (read back with ``surrogateescape``) still has a URI, and :func:`resolve_resource` finds it.
    """
    return f"{SCHEME}{skill}/{quote(os.fsencode(rel))}"


def file_description(skill: str, rel: str) -> str:
    """``"Reference file of the <skill> skill"`` for ``references/...`` (``Asset`` for ``assets/``)."""
    return f"{rel.partition('/')[0][:-1].capitalize()} file of the {skill} skill"


def read_skill_instructions(skill: Skill) -> str:
    """The body of the skill's ``SKILL.md`` (below the frontmatter), read now."""
    text = skill.skill_md.read_text(encoding="utf-8-sig")
    parts = split_frontmatter(text)
    return (parts[1] if parts else text).strip() + "\n"


def resolve_resource(source: SkillCatalog | Iterable[Skill], uri: str) -> tuple[Skill, Path | None]:
    """The skill and file behind ``uri`` (``None``: the instructions); raises :class:`SkillResourceError`."""
    if not uri.startswith(SCHEME):
        raise SkillResourceError(f"{uri!r} is not a skill resource (expected {SCHEME}<skill>/...)")
    name, _, rest = uri[len(SCHEME) :].partition("/")
    skill = next((s for s in _skills(source) if s.name == name), None)
    if skill is None:
        raise SkillResourceError(f"no skill named {name!r}")
    if rest == INSTRUCTIONS:
        return skill, None
    parts = [os.fsdecode(unquote_to_bytes(p)) for p in rest.split("/")]
    if not parts or parts[0] not in FOLDERS or len(parts) < 2:
        raise SkillResourceError(
            f"{uri!r}: skill resources are {INSTRUCTIONS} or files under {' or '.join(FOLDERS)}"
        )
    if any(p in ("", ".", "..") or "/" in p or "\\" in p or "\0" in p or ":" in p for p in parts):
        raise SkillResourceError(f"{uri!r}: segments '..', '.', empty, '/', '\\' and ':' are refused")
    target = os.path.join(skill.path, *parts)
    if not _within(target, str(skill.path)):
        raise SkillResourceError(f"{uri!r} resolves outside the skill folder; refused")
    if not os.path.isfile(target):
        raise SkillResourceError(f"{uri!r}: no such file")
    return skill, Path(target)


def read_skill_resource(source: SkillCatalog | Iterable[Skill], uri: str) -> SkillResourceContent:
    """Read one skill resource now; raises :class:`SkillResourceError` for unknown or unsafe URIs."""
    skill, path = resolve_resource(source, uri)
    if path is None:
        path = skill.skill_md
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SkillResourceError(f"{uri!r}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise SkillResourceError(f"{uri!r} is larger than {MAX_BYTES} bytes")
    mime = mime_type_of(str(path))
    if _is_text(mime):
        try:
            return SkillResourceContent(uri, mime, text=data.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    return SkillResourceContent(uri, mime, blob=data)
