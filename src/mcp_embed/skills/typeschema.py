"""JSON Schema from Python type annotations, read statically with :mod:`ast` (never evaluated).

:class:`SchemaResolver` turns one annotation into a schema: builtins and ``typing`` names, ``X | Y``,
``Optional``/``Union``/``Annotated``, ``Literal``, containers, string annotations, and the enums and
type aliases the script itself defines (:class:`ModuleNames`). It gives ``None`` for a type it cannot
resolve without importing the script. :func:`literal_default` reads a default value the same way.
"""

from __future__ import annotations

import ast
from typing import Any

__all__ = ["ModuleNames", "SchemaResolver", "literal_default"]

_SIMPLE: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "dict": {"type": "object"},
    "list": {"type": "array"},
    "tuple": {"type": "array"},
    "set": {"type": "array", "uniqueItems": True},
    "frozenset": {"type": "array", "uniqueItems": True},
    "Any": {},
    "object": {},
    "None": {"type": "null"},
    "NoneType": {"type": "null"},
    "Dict": {"type": "object"},
    "Mapping": {"type": "object"},
    "MutableMapping": {"type": "object"},
    "List": {"type": "array"},
    "Tuple": {"type": "array"},
    "Sequence": {"type": "array"},
    "MutableSequence": {"type": "array"},
    "Iterable": {"type": "array"},
    "Collection": {"type": "array"},
    "Set": {"type": "array", "uniqueItems": True},
    "FrozenSet": {"type": "array", "uniqueItems": True},
}
_ARRAYS = frozenset(
    {
        "list",
        "List",
        "Sequence",
        "MutableSequence",
        "Iterable",
        "Collection",
        "set",
        "Set",
        "frozenset",
        "FrozenSet",
    }
)
_MAPS = frozenset({"dict", "Dict", "Mapping", "MutableMapping"})
_ENUM_BASES = frozenset({"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"})
_MAX_DEPTH = 20


class ModuleNames:
    """Module-level names annotations may refer to: enums and simple type aliases."""

    def __init__(self, tree: ast.Module) -> None:
        self.enums: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, ast.expr] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(_base_name(b) in _ENUM_BASES for b in node.bases):
                values = _enum_values(node)
                if values is not None:
                    self.enums[node.name] = values
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self.aliases[node.targets[0].id] = node.value
            elif (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.value is not None
            ):
                if _base_name(node.annotation) == "TypeAlias":
                    self.aliases[node.target.id] = node.value
            elif type(node).__name__ == "TypeAlias":  # ``type X = ...`` (Python 3.12+)
                name = getattr(node, "name", None)
                value = getattr(node, "value", None)
                if isinstance(name, ast.Name) and isinstance(value, ast.expr):
                    self.aliases[name.id] = value


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _enum_values(node: ast.ClassDef) -> dict[str, Any] | None:
    """Member name -> value of an enum class whose values are literals (or ``auto()``)."""
    kinds = {_base_name(b) for b in node.bases}
    values: dict[str, Any] = {}
    for stmt in node.body:
        if not (
            isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        ):
            continue
        member = stmt.targets[0].id
        if member.startswith("_"):
            continue
        value = stmt.value
        if isinstance(value, ast.Call) and _base_name(value.func) == "auto":
            values[member] = member.lower() if "StrEnum" in kinds else len(values) + 1
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        if not isinstance(literal, str | int | float | bool) and literal is not None:
            return None
        values[member] = literal
    return values or None


def _json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return None


def _union(members: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    if any(m is None for m in members):
        return None
    schemas = [m for m in members if m is not None]
    if any(not m for m in schemas):
        return {}
    if all(set(m) == {"type"} and isinstance(m["type"], str) for m in schemas):
        types = list(dict.fromkeys(m["type"] for m in schemas))
        return {"type": types[0] if len(types) == 1 else types}
    return {"anyOf": schemas}


class SchemaResolver:
    """Resolves the annotation of one parameter, noting what the call needs besides the schema.

    ``enum_class`` is the enum of this script the argument is converted to at call time, and
    ``description`` the text of an ``Annotated[..., "text"]``.
    """

    def __init__(self, ctx: ModuleNames) -> None:
        self.ctx = ctx
        self.enum_class: str | None = None
        self.description: str | None = None

    def schema(self, node: ast.expr, depth: int = 0) -> dict[str, Any] | None:
        """The JSON Schema of an annotation, or ``None`` when it cannot be resolved statically."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(node, ast.Constant):
            if node.value is None:
                return {"type": "null"}
            if isinstance(node.value, str):
                try:
                    inner = ast.parse(node.value.strip(), mode="eval").body
                except (SyntaxError, ValueError, MemoryError, RecursionError):
                    return None
                return self.schema(inner, depth + 1)
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return _union([self.schema(node.left, depth + 1), self.schema(node.right, depth + 1)])
        if isinstance(node, ast.Subscript):
            return self._generic(node, depth)
        name = _base_name(node)
        if name is None:
            return None
        if name in self.ctx.enums:
            values = list(self.ctx.enums[name].values())
            self.enum_class = name
            types = {_json_type(v) for v in values}
            schema: dict[str, Any] = {"enum": values}
            if len(types) == 1:
                schema = {"type": types.pop(), **schema}
            return schema
        if name in _SIMPLE:
            return dict(_SIMPLE[name])
        if isinstance(node, ast.Name) and name in self.ctx.aliases:
            alias = self.ctx.aliases.pop(name)  # popped while resolving: guards against cycles
            try:
                return self.schema(alias, depth + 1)
            finally:
                self.ctx.aliases[name] = alias
        return None

    def _generic(self, node: ast.Subscript, depth: int) -> dict[str, Any] | None:
        base = _base_name(node.value)
        if base in {"Optional", "Union", "Annotated"}:
            return self._wrapper(base, node, depth)
        saved = self.enum_class  # an enum inside a container is not converted at call time
        try:
            return self._container(base, node, depth)
        finally:
            self.enum_class = saved

    def _wrapper(self, base: str, node: ast.Subscript, depth: int) -> dict[str, Any] | None:
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Optional" and len(args) == 1:
            return _union([self.schema(args[0], depth + 1), {"type": "null"}])
        if base == "Union":
            return _union([self.schema(a, depth + 1) for a in args])
        if base == "Annotated" and args:
            for extra in args[1:]:
                if isinstance(extra, ast.Constant) and isinstance(extra.value, str):
                    self.description = extra.value
            return self.schema(args[0], depth + 1)
        return None

    def _container(self, base: str | None, node: ast.Subscript, depth: int) -> dict[str, Any] | None:
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Literal":
            values: list[Any] = []
            for arg in args:
                try:
                    values.append(ast.literal_eval(arg))
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return None
            types = {_json_type(v) for v in values}
            if None in types:
                return None
            literal: dict[str, Any] = {"enum": values}
            return {"type": types.pop(), **literal} if len(types) == 1 else literal
        if base in _ARRAYS and len(args) == 1:
            items = self.schema(args[0], depth + 1)
            return None if items is None else {**_SIMPLE[base], "items": items}
        if base in {"tuple", "Tuple"}:
            if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
                items = self.schema(args[0], depth + 1)
                return None if items is None else {"type": "array", "items": items}
            prefix = [self.schema(a, depth + 1) for a in args]
            if any(p is None for p in prefix):
                return None
            return {"type": "array", "prefixItems": prefix, "minItems": len(prefix), "maxItems": len(prefix)}
        if base in _MAPS and len(args) == 2:
            key = self.schema(args[0], depth + 1)
            value = self.schema(args[1], depth + 1)
            if key is None or value is None or key.get("type") not in (None, "string"):
                return None
            return {"type": "object", "additionalProperties": value} if value else {"type": "object"}
        return None


def literal_default(node: ast.expr, ctx: ModuleNames) -> tuple[bool, Any]:
    """``(True, value)`` when a default is a JSON-able literal (or a member of an enum of this file)."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ctx.enums:
        members = ctx.enums[node.value.id]
        return (True, members[node.attr]) if node.attr in members else (False, None)
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, tuple):
        value = list(value)
    return (True, value) if _is_json_literal(value) else (False, None)


def _is_json_literal(value: Any, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    if isinstance(value, list):
        return all(_is_json_literal(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_literal(v, depth + 1) for k, v in value.items())
    return False
