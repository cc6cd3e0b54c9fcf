"""The plain subset of YAML that most ``SKILL.md`` frontmatters are written in, read without a YAML library.

Discovery reads one frontmatter per skill, and even PyYAML's C loader spends ~50 µs building each one in
Python, a third of a lazy discovery. :func:`load_flat` reads only lines of ``key: value`` and one level of
indented ``key: value`` under a ``key:`` of its own, with values YAML can only read as strings: plain
text that starts with a letter and holds no YAML syntax (``:``, ``#``, quotes, brackets, ...), or quoted
text without escapes. It returns ``None`` for anything else, including every value YAML would turn into
a bool, a null or a number, and the caller falls back to the YAML loader; so the result is always what
``frontmatter.load_core_yaml`` (the YAML 1.2 core schema every ``SKILL.md`` is read with) gives for the
same text, and what PyYAML's YAML 1.1 ``safe_load`` gives too (a property test checks this).
"""

from __future__ import annotations

import re

__all__ = ["load_flat"]

_KEY = r"[A-Za-z][A-Za-z0-9_.-]*"
_LINE = re.compile(rf"({_KEY}):(?: +(.*?))? *")
# First a letter, then no character that is YAML syntax, a control character or an odd line break.
_PLAIN = re.compile(
    r"[A-Za-z\u00c0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]"
    r"[^\x00-\x1f\x7f-\x9f#:\"'\\\[\]{}|>*&!%@`\ud800-\udfff\ufeff\u2028\u2029\ufffe\uffff]*"
)
_ODD = r"\x00-\x1f\x7f-\x9f\ud800-\udfff\ufeff\u2028\u2029\ufffe\uffff"
_DOUBLE = re.compile(rf'"([^"\\{_ODD}]*)"')
_SINGLE = re.compile(rf"'([^'{_ODD}]*)'")
# Anywhere, comments included: YAML reads these as line breaks or refuses them.
_BAD = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufeff\u2028\u2029\ufffe\uffff]")
# Plain words YAML 1.2 or YAML 1.1 resolves to booleans or null rather than strings: all left to the loader.
_WORDS = frozenset(
    w
    for base in ("yes", "no", "true", "false", "on", "off", "null")
    for w in (base, base.capitalize(), base.upper())
)


def _value(text: str) -> str | None:
    if _PLAIN.fullmatch(text):
        return None if text in _WORDS else text
    quoted = _DOUBLE.fullmatch(text) or _SINGLE.fullmatch(text)
    return quoted.group(1) if quoted else None


def load_flat(text: str) -> dict[str, str | dict[str, str | None] | None] | None:
    """``text`` as a map when it is in the plain subset, else ``None`` (then ask a YAML parser)."""
    if _BAD.search(text):
        return None
    doc: dict[str, str | dict[str, str | None] | None] = {}
    block: dict[str, str | None] | None = None  # the map under the last ``key:`` without a value
    indent = 0
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        depth = len(line) - len(stripped)
        if depth and block is None:
            return None
        if depth and indent and depth != indent:
            return None
        match = _LINE.fullmatch(stripped)
        if match is None or match.group(1) in _WORDS:
            return None
        key, raw = match.group(1), match.group(2)
        value = None if raw is None else _value(raw)
        if raw is not None and value is None:
            return None
        if depth:
            indent = depth
            assert block is not None
            block[key] = value
            continue
        if block is not None and not block:
            return None  # ``key:`` and then no nested line: YAML reads null; leave the rare case to it
        block, indent = None, 0
        if raw is None:
            block = {}
            doc[key] = block
        else:
            doc[key] = value
    if not doc or (block is not None and not block):
        return None
    return doc
