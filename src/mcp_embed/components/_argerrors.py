"""What is wrong with a call's arguments, said without the value: these messages go to the client,
into the audit record and the app log, where no argument value may appear unless
``audit_arguments=True``, and a secret-named field's never.

A message names the field, what was expected and the JSON type of what came (``got string``).
:func:`mask_argument_values` is the backstop for text built elsewhere (a tool's own exception).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["json_type", "mask_argument_values", "pydantic_message", "schema_error_message"]

_REDACTED = "[REDACTED]"
_MIN_MASKED = 4  # shorter values are masked only in secret-named fields' messages of their own
_MAX_MASKED = 256
_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?$|secret|token|api[-_]?key|apikey|authorization|credential|"
    r"private[-_]?key|access[-_]?key|cookie|session[-_]?key|signature",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """A field whose value is never written anywhere (``password``, ``api_key``, ``token``...)."""
    return bool(_SECRET_KEY.search(key))


def json_type(value: Any) -> str:
    """The JSON type name of ``value``: string, integer, number, boolean, null, array or object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _schema_value(value: Any) -> str:
    """A value from the tool's own schema (an enum, a pattern), short."""
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _hide(message: str, value: Any) -> str:
    if isinstance(value, str) and len(value) >= _MIN_MASKED:
        return message.replace(value, _REDACTED)
    return message


def pydantic_message(tool: str, exc: Any) -> str:
    """A pydantic ``ValidationError`` of a tool's arguments, one part a field, no value."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(arguments)"
        if err.get("type") == "missing":
            parts.append(f"{loc}: required argument is missing")
        elif err.get("type") == "extra_forbidden":
            parts.append(f"{loc}: unexpected argument")
        else:
            got = err.get("input")
            msg = _hide(str(err.get("msg", "invalid")), got)  # a custom validator may quote it
            parts.append(f"{loc}: {msg} (got {json_type(got)})")
    return f"Invalid arguments for tool '{tool}': " + "; ".join(parts)


def schema_field(error: Any) -> str:
    """The dotted path of the field a jsonschema error is about (a missing or extra one included)."""
    path = ".".join(str(p) for p in error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [p for p in error.validator_value if p not in instance]
        return ".".join(filter(None, [path, str(missing[0]) if missing else ""]))
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties") or {})
        extra = sorted(str(k) for k in instance if k not in known)
        return ".".join(filter(None, [path, extra[0] if extra else ""]))
    return path


_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}
_SIZES = {
    "minLength": ("at least", "characters"),
    "maxLength": ("at most", "characters"),
    "minItems": ("at least", "items"),
    "maxItems": ("at most", "items"),
    "minProperties": ("at least", "properties"),
    "maxProperties": ("at most", "properties"),
}


def schema_error_message(error: Any) -> str:
    """What a jsonschema ``ValidationError`` expected, in words that never quote the instance."""
    kind, want, got = error.validator, error.validator_value, json_type(error.instance)
    if kind == "type":
        types = " or ".join(want) if isinstance(want, list) else str(want)
        return f"expected {types} (got {got})"
    if kind == "required":
        return "required argument is missing"
    if kind == "additionalProperties":
        return "unexpected argument"
    if kind == "enum":
        return f"expected one of {_schema_value(want)} (got {got})"
    if kind == "const":
        return f"expected {_schema_value(want)} (got {got})"
    if kind in _BOUNDS:
        return f"expected a number {_BOUNDS[kind]} {want}"
    if kind in _SIZES:
        bound, unit = _SIZES[kind]
        return f"expected {bound} {want} {unit}"
    if kind == "pattern":
        return f"does not match the pattern {_schema_value(want)}"
    if kind == "format":
        return f"expected the format {_schema_value(want)}"
    if kind == "multipleOf":
        return f"expected a multiple of {want}"
    if kind == "uniqueItems":
        return "expected unique items"
    return f"does not match the schema ({kind!r} of the input schema)"


def schema_errors_message(tool: str, errors: list[Any]) -> str:
    """Up to five jsonschema errors of a tool's arguments, one part a field, no value."""
    parts = [f"{schema_field(e) or '(arguments)'}: {schema_error_message(e)}" for e in errors[:5]]
    return f"Invalid arguments for tool '{tool}': " + "; ".join(parts)


def _leaves(value: Any, secret: bool, all_values: bool, depth: int = 0) -> Iterator[str]:
    if depth > 32:
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, secret or is_secret_key(str(k)), all_values, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v, secret, all_values, depth + 1)
    elif isinstance(value, str) and (secret or all_values):
        yield value
    elif secret and isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def mask_argument_values(text: str, arguments: Any, *, all_values: bool) -> str:
    """``text`` with argument values replaced by ``[REDACTED]``: secret-named fields' always,
    every string's when ``all_values``. Values shorter than four characters are left, lest a
    message be shredded by a one-letter argument."""
    if not text or not arguments:
        return text
    values = {v for v in _leaves(arguments, False, all_values) if len(v) >= _MIN_MASKED}
    for value in sorted(values, key=len, reverse=True)[:_MAX_MASKED]:
        if value in text:
            text = text.replace(value, _REDACTED)
    return text
