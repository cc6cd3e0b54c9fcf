"""Tools inferred from Python scripts with :mod:`ast` alone: scripts are read, never imported or run.

A public, top-level, type-hinted ``def`` becomes a tool. Its JSON Schema comes from the annotations and
defaults, its description from the docstring, and each parameter's description from a Google-style
``Args:`` section.
"""

from __future__ import annotations

import ast
import inspect
import marshal
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ._model import SkillProblem
from .naming import tool_name

__all__ = [
    "FunctionInfo",
    "ParamInfo",
    "ScriptInfo",
    "analyze_script",
    "build_input_schema",
    "parse_docstring",
]

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
_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Kwargs|Returns?|Raises|Yields?|"
    r"Examples?|Notes?|Attributes|See Also|Warnings?|Todo|References)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_MAX_DEPTH = 20


class ParamInfo(NamedTuple):
    """One parameter: its schema (``None`` when :mod:`ast` could not resolve the type) and its docs.

    Named tuples, not dataclasses: discovery builds tens of thousands of these from the parse cache.
    """

    name: str
    schema: dict[str, Any] | None
    required: bool
    description: str | None = None
    default: Any = None
    has_default: bool = False
    enum_class: str | None = None
    annotation: str | None = None


class FunctionInfo(NamedTuple):
    """A top-level function as :mod:`ast` sees it."""

    name: str
    line: int
    description: str
    has_docstring: bool
    hinted: bool
    params: tuple[ParamInfo, ...]
    var_keyword: bool = False
    positional_only: bool = False
    is_async: bool = False

    def enum_params(self) -> dict[str, str]:
        """Parameter -> enum class name, for the parameters converted to enum members at call time."""
        return {p.name: p.enum_class for p in self.params if p.enum_class}

    @property
    def exported(self) -> bool:
        """Whether inference makes this function a tool (public, type-hinted, plain ``def``)."""
        return (
            not self.name.startswith("_") and self.hinted and not self.is_async and not self.positional_only
        )


class ToolSpec(NamedTuple):
    """A tool inference makes from one function, ready to register: schema, description and warnings."""

    function: str
    line: int
    description: str
    input_schema: dict[str, Any]
    enum_params: dict[str, str]
    problems: tuple[SkillProblem, ...]


class ScriptInfo:
    """What one script offers: its inferred tools, its top-level functions, and its problems.

    ``functions`` (needed only to merge ``tools.yaml`` declarations) may be held as plain rows and built on
    first use, so discovering inferred tools from the parse cache builds no per-parameter objects.
    """

    __slots__ = ("_functions", "_rows", "exports", "ok", "problems", "specs")

    def __init__(
        self,
        functions: dict[str, FunctionInfo] | None = None,
        exports: tuple[str, ...] | None = None,
        problems: tuple[SkillProblem, ...] = (),
        ok: bool = True,
        specs: tuple[ToolSpec, ...] = (),
        rows: Sequence[Sequence[Any]] | bytes | None = None,
    ) -> None:
        self._functions = functions if functions is not None or rows is not None else {}
        self._rows = rows
        self.exports = exports
        self.problems = problems
        self.ok = ok
        self.specs = specs

    @property
    def functions(self) -> dict[str, FunctionInfo]:
        """Every top-level function by name, in source order."""
        if self._functions is None:
            make_param, make_function = ParamInfo._make, FunctionInfo._make
            self._functions = {
                row[0]: make_function((*row[:5], tuple(map(make_param, row[5])), *row[6:]))
                for row in self._plain_rows()
            }
        return self._functions

    def _plain_rows(self) -> Sequence[Sequence[Any]]:
        rows = self._rows
        if isinstance(rows, bytes):  # from the parse cache
            rows = self._rows = marshal.loads(rows)  # noqa: S302 - bytes the cache wrote, like a .pyc
        return rows or ()

    def function_rows(self) -> tuple[tuple[Any, ...], ...]:
        """``functions`` as plain tuples, the form :attr:`functions` is rebuilt from."""
        if self._functions is None:
            return tuple(tuple(row) for row in self._plain_rows())
        return tuple((*fn[:5], tuple(map(tuple, fn.params)), *fn[6:]) for fn in self._functions.values())


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description (text before the first section) and ``Args:`` entries."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    base_indent: int | None = None
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped) if not line.startswith((" ", "\t")) else None
        if header:
            section, current, base_indent = header.group(1).lower(), None, None
            continue
        if section is None:
            summary.append(line)
            continue
        if (
            section
            not in {
                "args",
                "arguments",
                "parameters",
                "params",
                "keyword args",
                "keyword arguments",
                "kwargs",
            }
            or not stripped
        ):
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        match = _ARG_LINE.match(stripped) if indent <= base_indent else None
        if match:
            current = match.group(1)
            args[current] = match.group(2).strip()
        elif current is not None:
            args[current] = f"{args[current]} {stripped}".strip()
    return "\n".join(summary).strip(), args


class _Context:
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


class _Resolver:
    def __init__(self, ctx: _Context) -> None:
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


def _default(node: ast.expr, ctx: _Context) -> tuple[bool, Any]:
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
    return (True, value) if _jsonable(value) else (False, None)


def _jsonable(value: Any, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    if isinstance(value, list):
        return all(_jsonable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v, depth + 1) for k, v in value.items())
    return False


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, ctx: _Context) -> FunctionInfo:
    doc = ast.get_docstring(node, clean=False)  # parse_docstring cleans it
    description, arg_docs = parse_docstring(doc)
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    pairs: Iterable[tuple[ast.arg, ast.expr | None]] = [
        *zip(positional, defaults, strict=True),
        *zip(a.kwonlyargs, a.kw_defaults, strict=True),
    ]
    params: list[ParamInfo] = []
    hinted = node.returns is not None
    for arg, default in pairs:
        resolver = _Resolver(ctx)
        schema = None
        if arg.annotation is not None:
            hinted = True
            schema = resolver.schema(arg.annotation)
        has_default, value = _default(default, ctx) if default is not None else (False, None)
        params.append(
            ParamInfo(
                name=arg.arg,
                schema=schema,
                required=default is None,
                description=arg_docs.get(arg.arg) or resolver.description,
                default=value,
                has_default=has_default,
                enum_class=resolver.enum_class,
                annotation=ast.unparse(arg.annotation)
                if arg.annotation is not None and schema is None
                else None,
            )
        )
    return FunctionInfo(
        name=node.name,
        line=node.lineno,
        description=description,
        has_docstring=bool(doc),
        hinted=hinted,
        params=tuple(params),
        var_keyword=a.kwarg is not None,
        positional_only=bool(a.posonlyargs),
        is_async=isinstance(node, ast.AsyncFunctionDef),
    )


def _literal_all(tree: ast.Module) -> tuple[str, ...] | None:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            names = [
                e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
            return tuple(names)
    return None


def analyze_script(source: bytes | str, path: str, skill: str | None) -> ScriptInfo:
    """Read a script's top-level functions. A syntax error is a problem naming the file and line."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        where = f" (column {exc.offset})" if exc.offset else ""
        problem = SkillProblem(
            "error", path, "script-syntax", f"syntax error: {exc.msg}{where}", None, exc.lineno, skill
        )
        return ScriptInfo(problems=(problem,), ok=False)
    except (ValueError, MemoryError, RecursionError) as exc:
        problem = SkillProblem("error", path, "script-syntax", f"cannot parse: {exc}", None, None, skill)
        return ScriptInfo(problems=(problem,), ok=False)
    ctx = _Context(tree)
    functions: dict[str, FunctionInfo] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions[node.name] = _function(node, ctx)  # a later redefinition wins, as at run time
    exports = _literal_all(tree)
    chosen = [f for f in functions.values() if f.exported and (exports is None or f.name in exports)]
    return ScriptInfo(functions, exports, specs=tuple(_spec(fn, path, skill) for fn in chosen))


def _spec(fn: FunctionInfo, path: str, skill: str | None) -> ToolSpec:
    name = tool_name(skill or "", fn.name)
    schema, problems = build_input_schema(fn, None, path=path, skill=skill, tool=name)
    if not fn.has_docstring:
        problems.append(
            SkillProblem(
                "warning",
                path,
                "infer-docstring",
                f"{name}: function {fn.name!r} has no docstring, so the tool has no description",
                fn.name,
                fn.line,
                skill,
            )
        )
    return ToolSpec(fn.name, fn.line, fn.description, schema, fn.enum_params(), tuple(problems))


def build_input_schema(
    fn: FunctionInfo, declared: dict[str, Any] | None, *, path: str, skill: str | None, tool: str
) -> tuple[dict[str, Any], list[SkillProblem]]:
    """The input schema of ``fn``; properties of a ``declared`` schema win over inferred ones."""
    problems: list[SkillProblem] = []
    declared_props: dict[str, Any] = dict((declared or {}).get("properties") or {})
    properties: dict[str, Any] = {}
    required: list[str] = []
    for p in fn.params:
        if p.name in declared_props:
            properties[p.name] = declared_props.pop(p.name)
        else:
            schema = p.schema
            if schema is None:
                why = (
                    f"type {p.annotation!r} cannot be resolved statically"
                    if p.annotation
                    else "no annotation"
                )
                problems.append(
                    SkillProblem(
                        "warning",
                        path,
                        "infer-type",
                        f"{tool}: parameter {p.name!r}: {why}; it accepts any JSON value. "
                        "Declare its schema in tools.yaml to constrain it",
                        f"{fn.name}.{p.name}",
                        fn.line,
                        skill,
                    )
                )
                schema = {}
            prop = dict(schema)
            if p.description:
                prop["description"] = p.description
            if p.has_default:
                prop["default"] = p.default
            properties[p.name] = prop
        if p.required:
            required.append(p.name)
    properties.update(declared_props)  # extra declared properties only make sense with **kwargs
    schema_out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema_out["required"] = required
    if not fn.var_keyword:
        schema_out["additionalProperties"] = False
    for key, value in (declared or {}).items():
        if key != "properties":
            schema_out[key] = value
    return schema_out, problems
