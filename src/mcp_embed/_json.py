"""The one JSON decode and encode for bodies this package reads off or writes to the wire itself.

Python's ``json`` accepts input the rest of the stack cannot carry: nesting deep enough to exhaust
the recursion limit, integers past the int/str conversion limit, ``NaN``/``Infinity`` tokens, and
lone surrogates that UTF-8 cannot encode on the way out. :func:`loads` refuses all of them, the
way the SDK's own parser (pydantic-core) refuses most, so a message that passes here can be
re-encoded, pickled, audited and validated anywhere. Duplicate keys: the last one wins, as in the
SDK's parser, so no layer sees a different message from another.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ._jsonsafe import escape_surrogates_in_json

__all__ = ["MAX_DEPTH", "JsonError", "dumps", "loads"]

MAX_DEPTH = 200
"""Deepest nesting accepted, as in pydantic-core's parser (the SDK path)."""

_SEPARATORS = (",", ":")


class JsonError(ValueError):
    """The text is not JSON this server carries; the message says why."""


def _no_constant(token: str) -> Any:
    raise JsonError(f"{token} is not JSON")


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise JsonError(f"number out of range: {token[:40]}")
    return value


def loads(data: bytes | str) -> Any:
    """Parse strict JSON, or raise :class:`JsonError` (also for invalid UTF-8)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except JsonError:
        raise
    except RecursionError:
        raise JsonError(f"nested more than {MAX_DEPTH} deep") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        raise JsonError(str(exc)) from None
    # A walk only when something could be wrong: C-speed counts keep the plain case cheap.
    if text.count("[") + text.count("{") > MAX_DEPTH or "\\ud" in text or "\\uD" in text:
        _check(value)
    return value


def _check(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (list, dict)):
            if depth >= MAX_DEPTH:
                raise JsonError(f"nested more than {MAX_DEPTH} deep")
            if isinstance(item, dict):
                for k, v in item.items():
                    _check_text(k)
                    stack.append((v, depth + 1))
            else:
                stack.extend((v, depth + 1) for v in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonError("lone surrogate in a string (\\ud800-\\udfff unpaired)") from None


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. A lone surrogate (a tool may make one) is written as the text ``\\udXXX``,
    as everywhere else (:mod:`._jsonsafe`): strict parsers, the SDK client's among them, refuse its
    escape. Anything else that cannot be encoded raises :class:`JsonError`."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=_SEPARATORS)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return escape_surrogates_in_json(text).encode("utf-8")
    except RecursionError:
        raise JsonError("the value is nested too deeply to encode") from None
    except (TypeError, ValueError) as exc:  # not serialisable, a circular reference, a huge int
        raise JsonError(f"the value cannot be encoded as JSON: {exc}") from None
