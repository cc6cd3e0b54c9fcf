"""``SKILL.md`` frontmatter: its one YAML reading (the 1.2 core schema) and the agentskills.io rules.

Nothing here raises on bad input: every defect becomes a :class:`SkillProblem` naming the file, the key and
the rule, and a header with an error is not returned.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from ._flatyaml import load_flat
from ._model import Severity, SkillProblem

__all__ = [
    "SkillHeader",
    "load_core_yaml",
    "load_frontmatter",
    "load_yaml",
    "parse_skill_md",
    "split_frontmatter",
]

NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
NAME_MAX = 64
DESCRIPTION_MAX = 1024
COMPATIBILITY_MAX = 500
FRONTMATTER_MAX = 64 * 1024
SPEC_KEYS = frozenset({"name", "description", "license", "compatibility", "metadata", "allowed-tools"})
DCC_MCP = "dcc-mcp"

_OPEN = re.compile(r"\A\ufeff?---[ \t]*\r?\n")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.MULTILINE)


@functools.cache
def _safe_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Load one YAML document with the safe loader (the C one when libyaml is present).

    This is PyYAML's YAML 1.1 reading, kept for ``tools.yaml`` (dcc-mcp-core's format, read the way
    its Python users' PyYAML reads it). A ``SKILL.md`` frontmatter is read by :func:`load_frontmatter`.
    """
    import yaml

    return check_aliases(yaml.load(text, Loader=_safe_loader()))  # noqa: S506 - the loader is a SafeLoader


# The YAML 1.2 core schema's implicit types (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_CORE_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_CORE_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


@functools.cache
def _core_loader() -> Any:
    """A safe loader with the YAML 1.2 core schema: ``yes``, ``on``, ``1_000`` and dates stay strings
    and ``010`` is 10, as a YAML 1.2 reader has them, not PyYAML's 1.1 booleans, octals and dates."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class CoreLoader(base):  # type: ignore[valid-type,misc]
        pass

    CoreLoader.yaml_implicit_resolvers = {}
    for tag, pattern, first in (
        ("tag:yaml.org,2002:bool", _CORE_BOOL, "tTfF"),
        ("tag:yaml.org,2002:null", _CORE_NULL, ["~", "n", "N", ""]),
        ("tag:yaml.org,2002:int", _CORE_INT, "-+0123456789"),
        ("tag:yaml.org,2002:float", _CORE_FLOAT, "-+.0123456789"),
    ):
        CoreLoader.add_implicit_resolver(tag, pattern, list(first))

    def core_int(loader: Any, node: Any) -> int:
        text = str(loader.construct_scalar(node))
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)

    def core_bool(loader: Any, node: Any) -> bool:
        return str(loader.construct_scalar(node)).lower() == "true"

    CoreLoader.add_constructor("tag:yaml.org,2002:int", core_int)
    CoreLoader.add_constructor("tag:yaml.org,2002:bool", core_bool)
    return CoreLoader


def load_core_yaml(text: str) -> Any:
    """Load one YAML document with the YAML 1.2 core schema (safe: a ``SafeLoader`` subclass)."""
    import yaml

    return check_aliases(yaml.load(text, Loader=_core_loader()))  # noqa: S506 - a SafeLoader subclass


YAML_VALUES_MAX = 100_000
"""The most values a document may stand for once its aliases are expanded (as JSON expands them)."""


def check_aliases(doc: Any) -> Any:
    """``doc``, unless its aliases make it endless (an anchor inside itself) or huge once expanded
    ("billion laughs"): then a ``YAMLError``. YAML shares an aliased value instead of copying it, so
    the document loads fine and the damage comes later, in whatever walks it (JSON, a schema)."""
    import yaml

    expanded: dict[int, int] = {}  # id -> how many values the subtree stands for
    started: set[int] = set()  # the containers whose subtree is being walked: the current path
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        if finished:
            started.discard(key)
            total = 1 + sum(expanded.get(id(c), 1) for c in children)
            if total > YAML_VALUES_MAX:
                raise yaml.YAMLError(
                    f"the YAML stands for more than {YAML_VALUES_MAX} values once its aliases are expanded"
                )
            expanded[key] = total
            continue
        if key in expanded:
            continue
        if key in started:
            raise yaml.YAMLError("a YAML alias refers to a value that contains it (an endless document)")
        started.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)))
    return doc


def load_frontmatter(text: str) -> Any:
    """The one reading of a ``SKILL.md`` frontmatter (its YAML text), for discovery and ``skills/get``.

    YAML 1.2 core schema, as the agents and hosts that re-read the file have it (SEP-2640: the entry's
    ``frontmatter`` is the file's), with the plain-text fast path of :mod:`._flatyaml` first. Raises what
    the YAML loader raises.
    """
    flat = load_flat(text)
    return flat if flat is not None else load_core_yaml(text)


def yaml_error_line(exc: BaseException) -> int | None:
    """The 1-based line of a YAML error inside its document, if the error carries one."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = getattr(mark, "line", None)
    return line + 1 if isinstance(line, int) else None


def split_frontmatter(text: str) -> tuple[str, str, int] | None:
    """Split ``text`` into (frontmatter YAML, body, body's first line), or ``None`` when unterminated.

    Raises nothing; a text without an opening ``---`` gives ``("", text, 1)`` so the caller can tell.
    """
    opened = _OPEN.match(text)
    if opened is None:
        return "", text, 1
    closed = _CLOSE.search(text, opened.end())
    if closed is None:
        return None
    yaml_text = text[opened.end() : closed.start()]
    rest = closed.end()
    if text.startswith("\r\n", rest):
        rest += 2
    elif text.startswith("\n", rest):
        rest += 1
    return yaml_text, text[rest:], text.count("\n", 0, rest) + 1


@dataclass(frozen=True)
class SkillHeader:
    """The validated frontmatter of one ``SKILL.md``."""

    name: str
    description: str
    license: str | None = None
    compatibility: str | None = None
    allowed_tools: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    dcc: tuple[str, ...] = ()
    version: str | None = None
    tools_file: str | None = None


class _Report:
    def __init__(self, path: str, skill: str | None) -> None:
        self.path = path
        self.skill = skill
        self.problems: list[SkillProblem] = []

    def add(
        self, severity: Severity, rule: str, message: str, key: str | None = None, line: int | None = None
    ) -> None:
        self.problems.append(SkillProblem(severity, self.path, rule, message, key, line, self.skill))

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def _scalar_text(value: Any) -> str | None:
    """``value`` as metadata text: scalars as YAML wrote them, a flat list comma-joined, else ``None``."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return None


def _metadata(raw: Any, report: _Report) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        report.add(
            "error",
            "metadata-string-map",
            "metadata must be a map of string keys to string values",
            "metadata",
        )
        return {}
    flat: dict[str, str] = {}
    for key, value in raw.items():
        k = str(key)
        if k == DCC_MCP and isinstance(value, dict):
            report.add(
                "warning",
                "metadata-string-map",
                "nested 'metadata.dcc-mcp' map is dcc-mcp-core's form and not spec-valid; read anyway. "
                "Write flat string keys such as 'dcc-mcp.dcc: maya' or 'dcc: maya'",
                "metadata.dcc-mcp",
            )
            for sub_key, sub_value in value.items():
                text = _scalar_text(sub_value)
                if text is None:
                    report.add(
                        "warning",
                        "metadata-string-map",
                        "value is not a string; ignored",
                        f"metadata.dcc-mcp.{sub_key}",
                    )
                else:
                    flat[f"{DCC_MCP}.{sub_key}"] = text
            continue
        text = _scalar_text(value)
        if text is None:
            report.add(
                "error",
                "metadata-string-map",
                "metadata values must be strings, not maps or lists",
                f"metadata.{k}",
            )
        else:
            if not isinstance(value, str) or not isinstance(key, str):
                report.add(
                    "warning",
                    "metadata-string-map",
                    f"metadata values must be strings; read {value!r} as {text!r}. Quote it in YAML",
                    f"metadata.{k}",
                )
            flat[k] = text
    return flat


def _string(
    fm: dict[Any, Any], key: str, report: _Report, *, required: bool, limit: int | None
) -> str | None:
    value = fm.get(key)
    if value is None:
        if required:
            report.add("error", f"{key}-required", f"'{key}' is required", key)
        return None
    if not isinstance(value, str):
        report.add("error", "field-type", f"'{key}' must be a string, not {type(value).__name__}", key)
        return None
    text = value.strip()
    if required and not text:
        report.add("error", f"{key}-required", f"'{key}' must not be empty", key)
    if limit is not None and len(text) > limit:
        report.add(
            "error", f"{key}-length", f"'{key}' is {len(text)} characters; at most {limit} allowed", key
        )
    return text


def _check_name(name: str, folder: str | None, report: _Report) -> None:
    if len(name) > NAME_MAX:
        report.add(
            "error", "name-length", f"'name' is {len(name)} characters; at most {NAME_MAX} allowed", "name"
        )
    if not NAME_RE.fullmatch(name):
        report.add(
            "error",
            "name-format",
            f"'name' {name!r} must use only a-z, 0-9 and '-', with no leading, trailing or doubled '-'",
            "name",
        )
    if folder is not None and name != folder:
        report.add(
            "error", "name-matches-folder", f"'name' {name!r} must equal the folder name {folder!r}", "name"
        )


def _dcc_list(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def parse_skill_md(text: str, path: str, folder: str | None) -> tuple[SkillHeader | None, list[SkillProblem]]:
    """Parse and validate a ``SKILL.md`` text; ``folder`` is the name ``name`` must equal (``None``: skip).

    Returns the header (``None`` when any error was found) and every problem, warnings included.
    """
    report = _Report(path, folder)
    parts = split_frontmatter(text)
    if parts is None:
        report.add("error", "frontmatter-closed", "the frontmatter opened with '---' is never closed", line=1)
        return None, report.problems
    yaml_text, _body, _line = parts
    if not yaml_text and not _OPEN.match(text):
        report.add(
            "error", "frontmatter-present", "SKILL.md must start with a '---' YAML frontmatter block", line=1
        )
        return None, report.problems
    if len(yaml_text) > FRONTMATTER_MAX:
        report.add("error", "frontmatter-size", f"the frontmatter exceeds {FRONTMATTER_MAX} bytes", line=2)
        return None, report.problems
    try:
        fm = load_frontmatter(yaml_text)
    except Exception as exc:  # a safe loader raises many types on hostile input; all are "bad YAML"
        inner = yaml_error_line(exc)
        detail = str(getattr(exc, "problem", None) or exc).strip().splitlines()
        report.add(
            "error",
            "frontmatter-yaml",
            f"invalid YAML: {detail[0] if detail else type(exc).__name__}",
            line=inner + 1 if inner else 2,
        )
        return None, report.problems
    if not isinstance(fm, dict):
        report.add(
            "error",
            "frontmatter-mapping",
            f"the frontmatter must be a YAML map, not {type(fm).__name__}",
            line=2,
        )
        return None, report.problems

    for key in fm:
        if key not in SPEC_KEYS:
            report.add(
                "warning",
                "unknown-key",
                f"unknown top-level key {str(key)!r}; the agentskills.io spec allows only "
                f"{', '.join(sorted(SPEC_KEYS))}",
                str(key),
            )
    name = _string(fm, "name", report, required=True, limit=None)
    if name is not None:
        _check_name(name, folder, report)
    description = _string(fm, "description", report, required=True, limit=DESCRIPTION_MAX)
    license_ = _string(fm, "license", report, required=False, limit=None)
    compatibility = _string(fm, "compatibility", report, required=False, limit=COMPATIBILITY_MAX)
    allowed = fm.get("allowed-tools")
    if allowed is not None and not isinstance(allowed, str):
        report.add(
            "warning", "field-type", "'allowed-tools' should be a space-separated string", "allowed-tools"
        )
        allowed = " ".join(map(str, allowed)) if isinstance(allowed, list) else None
    metadata = _metadata(fm.get("metadata"), report)

    legacy_dcc = _scalar_text(fm.get("dcc")) if "dcc" in fm else None
    dcc = metadata.get("dcc") or metadata.get(f"{DCC_MCP}.dcc") or legacy_dcc
    if report.failed or name is None or description is None:
        return None, report.problems
    header = SkillHeader(
        name=name,
        description=description,
        license=license_,
        compatibility=compatibility,
        allowed_tools=allowed,
        metadata=metadata,
        dcc=_dcc_list(dcc),
        version=metadata.get("version") or metadata.get(f"{DCC_MCP}.version"),
        tools_file=metadata.get("tools") or metadata.get(f"{DCC_MCP}.tools"),
    )
    return header, report.problems
