"""Tools inferred from Python scripts with :mod:`ast` alone: scripts are read, never imported or run.

A public, top-level, type-hinted ``def`` becomes a tool. Its JSON Schema comes from the annotations and
defaults (see :mod:`.typeschema`), its description from the docstring, and each parameter's description
from a Google-style ``Args:`` section (see :mod:`.docstrings`). This module holds what one script offers
(:class:`ScriptInfo`, its functions and the tools made from them) and the input schema a tool gets.
"""

from __future__ import annotations

import ast
import marshal
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ._model import SkillProblem
from .docstrings import parse_docstring
from .naming import tool_name
from .typeschema import ModuleNames, SchemaResolver, literal_default

__all__ = [
    "FunctionInfo",
    "ParamInfo",
    "ScriptInfo",
    "ToolSpec",
    "analyze_script",
    "build_input_schema",
]


# ``ctx: ToolContext``, ``mcp_embed.ToolContext``, ``"ToolContext"``, ``ToolContext | None``
_CONTEXT = re.compile(r"""['"]?(?:[A-Za-z_][A-Za-z0-9_]*\.)*ToolContext(?:\s*\|\s*None)?['"]?""")


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
    context: str | None = None
    """The parameter annotated ``ToolContext``: passed the call's context, never in the schema."""

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
    context: str | None = None


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


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, ctx: ModuleNames) -> FunctionInfo:
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
    context: str | None = None
    for arg, default in pairs:
        if arg.annotation is not None and _CONTEXT.fullmatch(ast.unparse(arg.annotation)):
            hinted, context = True, arg.arg
            continue
        resolver = SchemaResolver(ctx)
        schema = None
        if arg.annotation is not None:
            hinted = True
            schema = resolver.schema(arg.annotation)
        has_default, value = literal_default(default, ctx) if default is not None else (False, None)
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
        context=context,
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
    ctx = ModuleNames(tree)
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
    return ToolSpec(fn.name, fn.line, fn.description, schema, fn.enum_params(), tuple(problems), fn.context)


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
