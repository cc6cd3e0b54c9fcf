"""Skill instructions and reference files as MCP resources, read with path safety.

URIs are stable and derived from the skill's name and the file's place in it:

- ``skill://<name>/SKILL.md``: the instructions (the ``SKILL.md`` body below the frontmatter);
- ``skill://<name>/references/<path>`` and ``skill://<name>/assets/<path>``: the files in those folders.

A URI with ``..``, or a file that resolves (through a symlink) outside its skill folder, is refused.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from ._model import Skill, SkillCatalog, SkillResourceError
from .frontmatter import split_frontmatter

__all__ = [
    "SCHEME",
    "SkillResource",
    "SkillResourceContent",
    "list_skill_resources",
    "read_skill_instructions",
    "read_skill_resource",
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


def _mime(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    return _TEXT_SUFFIXES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in {"application/json", "application/yaml", "application/xml"}


def _within(path: str, folder: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, base]) == base


def _skills(source: SkillCatalog | Iterable[Skill]) -> list[Skill]:
    return list(source.skills if isinstance(source, SkillCatalog) else source)


def list_skill_resources(source: SkillCatalog | Iterable[Skill]) -> list[SkillResource]:
    """Every resource of every skill: its instructions first, then its references and assets."""
    resources: list[SkillResource] = []
    for skill in _skills(source):
        base = str(skill.path)
        resources.append(
            SkillResource(
                uri=f"{SCHEME}{skill.name}/{INSTRUCTIONS}",
                name=f"{skill.name}/{INSTRUCTIONS}",
                description=f"Instructions for the {skill.name} skill: {skill.description}",
                mime_type="text/markdown",
                skill=skill.name,
                path=skill.skill_md,
            )
        )
        for folder in FOLDERS:
            top = os.path.join(base, folder)
            if not os.path.isdir(top):
                continue
            for dirpath, dirnames, filenames in os.walk(top):  # symlinked folders are listed, not entered
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for filename in sorted(filenames):
                    full = os.path.join(dirpath, filename)
                    if filename.startswith(".") or not _within(full, base) or not os.path.isfile(full):
                        continue
                    rel = Path(os.path.relpath(full, base)).as_posix()
                    resources.append(
                        SkillResource(
                            uri=f"{SCHEME}{skill.name}/{quote(rel)}",
                            name=f"{skill.name}/{rel}",
                            description=f"{folder[:-1].capitalize()} file of the {skill.name} skill",
                            mime_type=_mime(full),
                            skill=skill.name,
                            path=Path(full),
                            size=os.path.getsize(full),
                        )
                    )
    return resources


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
    parts = [unquote(p) for p in rest.split("/")]
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
        try:
            return SkillResourceContent(uri, "text/markdown", text=read_skill_instructions(skill))
        except (OSError, UnicodeDecodeError) as exc:
            raise SkillResourceError(f"{uri!r}: cannot read: {exc}") from None
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SkillResourceError(f"{uri!r}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise SkillResourceError(f"{uri!r} is larger than {MAX_BYTES} bytes")
    mime = _mime(str(path))
    if _is_text(mime):
        try:
            return SkillResourceContent(uri, mime, text=data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            pass
    return SkillResourceContent(uri, mime, blob=data)
