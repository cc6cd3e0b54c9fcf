"""The import contract: packages are layers, and imports only point down.

For the layers every ``import`` in ``src/mcp_embed`` counts, at module level, under ``TYPE_CHECKING``
and inside functions alike: a lazy import is still a dependency, and a type named up a layer is a
lower layer knowing a higher one. For cycles only imports that run count: a record and the code
that acts on it may name each other's types. A failure names the importing file, the line and both
layers, so the fix is to pass what the lower layer needs down to it, not to hide the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "mcp_embed"

# Highest first. A module belongs to the first layer with a prefix that names it or its package.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("mcp_embed.cli", "mcp_embed.__main__")),
    # One MCP server fronting every registered instance: built from the facade like any host's.
    ("gateway", ("mcp_embed.gateway",)),
    ("facade", ("mcp_embed.server", "mcp_embed.handle", "mcp_embed.testing", "mcp_embed.pytest_plugin")),
    ("runtime", ("mcp_embed.runtime",)),
    ("assemble", ("mcp_embed.assemble",)),
    ("http", ("mcp_embed.http",)),
    ("protocol", ("mcp_embed.protocol",)),
    (
        "served",
        (
            "mcp_embed.components",
            "mcp_embed.ops",
            "mcp_embed.skills",
            "mcp_embed.dispatch",
            "mcp_embed.replicas",
            "mcp_embed.instances",
        ),
    ),
    (
        "values",
        (
            "mcp_embed.config",
            "mcp_embed.admission",
            "mcp_embed.auth",
            "mcp_embed.errors",
            "mcp_embed.content",
            "mcp_embed.context",
            "mcp_embed.events",
            "mcp_embed.tasks",
            "mcp_embed.logs",
            "mcp_embed._asgi",
            "mcp_embed._json",
            "mcp_embed._jsonsafe",
            "mcp_embed._lazy",
            "mcp_embed._version",
        ),
    ),
]
# The package's own __init__ is the public face: it may name anything (lazily, for re-export).
FACE = "mcp_embed"
# Only these import the server object.
SERVER_IMPORTERS = {
    "mcp_embed",
    "mcp_embed.cli",
    "mcp_embed.gateway",
    "mcp_embed.testing",
    "mcp_embed.pytest_plugin",
}
MAX_LINES = 500


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in sorted(PKG.rglob("*.py"))}


def _layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")


def _resolve(name: str) -> str | None:
    """The module of ours that ``name`` (a module or a name inside one) is, if any."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _type_only(tree: ast.Module) -> set[int]:
    """The ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    out: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        name = (
            test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
        )
        if name == "TYPE_CHECKING":
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}  # type: ignore[attr-defined]
    return out


def _imports(module: str) -> list[tuple[int, str, bool]]:
    """(line, imported module of ours, runs) for every import statement of ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str, bool]] = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = _type_only(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{a.name}" for a in node.names] if stem else []
        else:
            continue
        for target in targets:
            found = _resolve(target)
            if found is not None and found != module:
                out.append((node.lineno, found, id(node) not in type_only))
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        if module != FACE:
            _layer(module)


def test_imports_point_only_down() -> None:
    upward = []
    for module, edges in GRAPH.items():
        if module == FACE:
            continue
        for line, target, _ in edges:
            if target != FACE and _layer(target) < _layer(module):
                where = f"{MODULES[module].relative_to(PKG.parent)}:{line}"
                upper, lower = LAYERS[_layer(module)][0], LAYERS[_layer(target)][0]
                upward.append(f"{where}: {module} ({upper}) imports {target} ({lower})")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_only_the_face_the_cli_and_the_testing_kit_import_the_server() -> None:
    importers = {m for m, edges in GRAPH.items() for _, t, _ in edges if t == "mcp_embed.server"}
    assert importers <= SERVER_IMPORTERS, sorted(importers - SERVER_IMPORTERS)


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components over the imports that run: none larger than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for _, w, runs in GRAPH[v]:
            if w == FACE or not runs:
                continue  # importing the package itself runs only its lazy face
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_takes_another_modules_private_names() -> None:
    """``from x import _name`` reads another module's private field: give it a public name instead.
    A private *module* (``from . import _cache``) is fine: its own names are its interface."""
    taken = []
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and f"{stem}.{alias.name}" not in MODULES:
                    taken.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {alias.name} from {stem}")
    assert not taken, "private names taken from another module:\n" + "\n".join(taken)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_500_lines(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(PKG.parent)} has {lines} lines"


def test_the_contract_sees_imports() -> None:
    """The checker itself: it finds a known downward import, so an empty graph cannot pass."""
    assert ("mcp_embed.assemble", True) in {(t, r) for _, t, r in GRAPH["mcp_embed.runtime.thread"]}
    assert ("mcp_embed.assemble", False) in {(t, r) for _, t, r in GRAPH["mcp_embed.server"]}
    assert any(t == "mcp_embed.components" for _, t, _ in GRAPH["mcp_embed.server"])
