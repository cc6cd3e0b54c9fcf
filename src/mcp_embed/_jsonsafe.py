"""JSON and text that always encode: for every place that writes what a caller sent.

A JSON string may hold a lone surrogate (``"\\ud800"`` is a valid escape), which Python decodes to a
``str`` that ``.encode("utf-8")`` refuses. Written back as the same ``\\udXXX`` escape it is valid
JSON, valid UTF-8, and decodes to the very string the caller sent. Values JSON cannot hold (NaN, a
cycle, an object whose ``str()`` raises, an int too long for ``str()``) become strings.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps", "dumps_bytes", "escape_surrogates", "safe_str"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 64


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as its ``\\udXXX`` escape: encodable as UTF-8."""
    return _SURROGATE.sub(_escape, text)


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
    ``NaN`` (not JSON) so that hashes of inputs that always hashed keep their value.
    """
    return escape_surrogates(_text(value, sort_keys, strict))


def dumps_bytes(value: Any, *, sort_keys: bool = False, strict: bool = True) -> bytes:
    """:func:`dumps` as UTF-8 bytes; the surrogate scan runs only when the plain encode fails."""
    text = _text(value, sort_keys, strict)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return escape_surrogates(text).encode("utf-8")
