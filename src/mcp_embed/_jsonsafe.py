"""JSON and text that always encode: for every place that writes what a caller sent.

A JSON string may hold a lone surrogate (``"\\ud800"`` is a valid escape), which Python decodes to a
``str`` that ``.encode("utf-8")`` refuses. Here it becomes the six characters ``\\ud800`` (a
backslash, then the code point in hex): valid UTF-8, and JSON that every parser accepts (strict
ones such as pydantic's and serde's refuse a lone-surrogate escape). Values JSON cannot hold (NaN,
a cycle, an object whose ``str()`` raises, an int too long for ``str()``) become strings.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "dumps",
    "dumps_bytes",
    "escape_surrogates",
    "escape_surrogates_in_json",
    "plain",
    "safe_str",
    "scrub",
]

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 64


def _as_text(match: re.Match[str]) -> str:  # in a JSON text: the escape that decodes to the same surrogate
    return f"\\u{ord(match.group()):04x}"


def _in_json(match: re.Match[str]) -> str:  # inside a JSON string: an escaped backslash, then udXXX
    return f"\\\\u{ord(match.group()):04x}"


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as the text ``\\udXXX``: encodable as UTF-8."""
    return _SURROGATE.sub(_as_text, text)


def escape_surrogates_in_json(text: str) -> str:
    """JSON ``text`` whose strings hold lone surrogates, with each one made the text ``\\udXXX``."""
    return _SURROGATE.sub(_in_json, text)


def _dirty(value: Any, depth: int) -> bool:
    if isinstance(value, str):
        return not value.isascii() and _SURROGATE.search(value) is not None
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return any(_dirty(k, depth + 1) or _dirty(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_dirty(v, depth + 1) for v in value)
    return False


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return escape_surrogates(value)
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {_clean(k, depth + 1): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    return value


def scrub(value: Any) -> Any:
    """``value`` (JSON-shaped) with lone surrogates escaped in every string, for an encoder that
    refuses them (pydantic's). The very object when it has none, which is the cheap common case."""
    return _clean(value, 0) if _dirty(value, 0) else value


def safe_str(value: Any) -> str:
    """``str(value)``, never raising, free of lone surrogates."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return escape_surrogates(text)


def _plain(value: Any, depth: int, seen: set[int]) -> Any:
    """``value`` reduced to what strict JSON holds (cycles, depth and odd leaves made strings)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if value.bit_length() < 4000 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > _MAX_DEPTH:
        return "<too deep>"
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in seen:
            return "<cycle>"
        seen.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {safe_str(k): _plain(v, depth + 1, seen) for k, v in value.items()}
            return [_plain(v, depth + 1, seen) for v in value]
        finally:
            seen.discard(id(value))
    return safe_str(value)


def plain(value: Any) -> Any:
    """``value`` as strict JSON values that always encode, never raising: what a caller hands over
    to be sent as it is (a log entry's data). Cycles, depth past 64 and other leaves become text."""
    return scrub(_plain(value, 0, set()))


def _default(value: Any) -> str:
    return safe_str(value)


def _text(value: Any, sort_keys: bool, strict: bool) -> str:
    options: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":"), "sort_keys": sort_keys}
    try:
        return json.dumps(value, allow_nan=not strict, default=_default, **options)
    except (ValueError, TypeError, RecursionError):
        return json.dumps(_plain(value, 0, set()), allow_nan=False, **options)


def dumps(value: Any, *, sort_keys: bool = False, strict: bool = True) -> str:
    """Compact JSON of ``value`` that never raises and always encodes as UTF-8.

    ``strict`` writes NaN and infinities as strings; ``strict=False`` keeps ``json.dumps``'s own
    ``NaN`` (not JSON), for a response or a hash that must not change.
    """
    return escape_surrogates_in_json(_text(value, sort_keys, strict))


def dumps_bytes(value: Any, *, sort_keys: bool = False, strict: bool = True, exact: bool = False) -> bytes:
    """:func:`dumps` as UTF-8 bytes; the surrogate scan runs only when the plain encode fails.

    ``exact`` keeps a lone surrogate as its JSON escape, distinct from the text ``\\ud800``: for a
    hash, which no parser reads.
    """
    text = _text(value, sort_keys, strict)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_as_text if exact else _in_json, text).encode("utf-8")


def jsonable(value: Any) -> Any:
    """``value`` as JSON values, for data a user wrote (a frontmatter, a skill script's result):
    containers become objects and arrays, NaN and infinities ``null``, dates ISO 8601 text, bytes
    base64, keys text (``true``/``false``/``null`` as JSON spells them), any other leaf its ``str``.
    Raises ``ValueError`` for a value that contains itself or nests deeper than JSON parsers read."""
    return _jsonable(value, 0, set())


def _jsonable(value: Any, depth: int, path: set[int]) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dict, list, tuple)):
        if depth > _MAX_DEPTH:
            raise ValueError(f"the value nests deeper than {_MAX_DEPTH} levels")
        if id(value) in path:
            raise ValueError("the value contains itself")
        path.add(id(value))
        try:
            if isinstance(value, dict):
                return {_json_key(k): _jsonable(v, depth + 1, path) for k, v in value.items()}
            return [_jsonable(v, depth + 1, path) for v in value]
        finally:
            path.discard(id(value))
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)
