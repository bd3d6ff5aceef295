"""The layer rule, read from the source: packages import only downward, tools stay outside, no cycles."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The product's packages, bottom to top: a module imports from its own package and the ones before it,
# never after (docs/architecture.md shows this order; a test below keeps the two in step).
LAYERS = ("core", "shopify", "feeds", "chat", "runtime", "jobs", "web")
# Stand-ins and tools sit outside the product: they may use it, it never imports them.
TOOLS = ("devshop", "devmodel", "devtools", "bench", "tests")
# The stand-ins play Shopify and the model provider: from the product they take constants only.
STAND_INS = ("devshop", "devmodel")
STAND_IN_MAY_IMPORT = frozenset({"shopify.version"})
# devshop is a whole fake platform written for tests; its internal module graph is its own business.
CYCLES_IGNORED_IN = ("devshop",)

# A module named in a string ("jobs.sync.full_sync", enqueued by dotted path) is a dependency too.
_DOTTED = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-zA-Z_][a-zA-Z0-9_]*)+$")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, e.g. "core.services"
    target: str  # imported module, e.g. "shopify.plans"
    path: Path
    line: int
    how: str  # "import", "import in a function", "import under TYPE_CHECKING", "import_module()", "dotted path"

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.source} → {self.target} ({self.how})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in LAYERS + TOOLS:
        for path in sorted((REPO / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _files()


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _resolve(source: str, path: Path, module: str | None, level: int) -> str:
    if not level:
        return module or ""
    package = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class _Collector(ast.NodeVisitor):
    """Every import of one module: top level, in functions, under TYPE_CHECKING, importlib, job paths."""

    def __init__(self, source: str, path: Path) -> None:
        self.source = source
        self.path = path
        self.edges: list[Edge] = []
        self.dynamic: list[str] = []  # importlib calls whose argument is not a literal
        self._functions = 0
        self._type_checking = 0
        self._docstrings: set[int] = set()

    def _how(self) -> str:
        if self._type_checking:
            return "import under TYPE_CHECKING"
        return "import in a function" if self._functions else "import"

    def _add(self, target: str, node: ast.AST, how: str) -> None:
        self.edges.append(Edge(self.source, target, self.path, getattr(node, "lineno", 0), how))

    def _note_docstring(self, node: ast.AST) -> None:
        body = getattr(node, "body", None)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self._docstrings.add(id(body[0].value))

    def visit_Module(self, node: ast.Module) -> None:
        self._note_docstring(node)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._note_docstring(node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._note_docstring(node)
        self._functions += 1
        self.generic_visit(node)
        self._functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        guarded = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
        if not guarded:
            self.generic_visit(node)
            return
        self.visit(test)
        self._type_checking += 1
        for child in node.body:
            self.visit(child)
        self._type_checking -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node, self._how())

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(self.source, self.path, node.module, node.level)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(submodule if submodule in MODULES else base, node, self._how())

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in {"import_module", "__import__"} and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self._add(arg.value, node, f"{name}()")
            else:
                self.dynamic.append(f"{self.path.relative_to(REPO)}:{node.lineno}: {name}() of a computed name")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and id(node) not in self._docstrings and _DOTTED.match(value):
            # A module ("shopify.shops") or a module's attribute ("jobs.sync.full_sync"), not "chat.completion".
            module = value if value in MODULES else value.rsplit(".", 1)[0]
            if module in MODULES and "." in module and module != self.source:
                self._add(module, node, f"dotted path {value!r}")


def _collect() -> tuple[list[Edge], list[str]]:
    edges: list[Edge] = []
    dynamic: list[str] = []
    for module, path in MODULES.items():
        collector = _Collector(module, path)
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        edges.extend(e for e in collector.edges if _top(e.target) in LAYERS + TOOLS)
        dynamic.extend(collector.dynamic)
    return edges, dynamic


EDGES, DYNAMIC = _collect()


def _fail(title: str, problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{title}:\n  " + "\n  ".join(sorted(set(problems))), pytrace=False)


def test_every_package_has_a_place() -> None:
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    unplaced = sorted(packages - set(LAYERS) - set(TOOLS))
    assert not unplaced, f"packages with no place in LAYERS or TOOLS (tests/test_layering.py): {unplaced}"


def test_product_imports_only_downward() -> None:
    problems = []
    for edge in EDGES:
        source, target = _top(edge.source), _top(edge.target)
        if source not in LAYERS:
            continue
        if target in TOOLS:
            problems.append(f"{edge}: product code never imports the stand-ins or tools ({target})")
        elif LAYERS.index(target) > LAYERS.index(source):
            allowed = ", ".join(LAYERS[: LAYERS.index(source) + 1])
            problems.append(f"{edge}: {source} sits below {target}; it may import only {allowed}")
    _fail("upward imports (layers, bottom to top: " + " → ".join(LAYERS) + ")", problems)


def test_product_imports_are_literal() -> None:
    # A computed module name cannot be checked: name the module, as an ordinary import.
    _fail("dynamic imports in product code", [d for d in DYNAMIC if _top(d.split("/", 1)[0]) in LAYERS])


def test_stand_ins_take_only_constants_from_the_product() -> None:
    problems = [
        f"{edge}: {_top(edge.source)} may take only {sorted(STAND_IN_MAY_IMPORT)} from the product"
        for edge in EDGES
        if _top(edge.source) in STAND_INS and _top(edge.target) in LAYERS and edge.target not in STAND_IN_MAY_IMPORT
    ]
    _fail("stand-ins importing product code", problems)


def _cycles(graph: dict[str, dict[str, Edge]]) -> Iterator[list[Edge]]:
    """One example cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    for component in components:
        if len(component) < 2:
            continue
        members = set(component)
        start = min(component)
        # Breadth-first from `start` back to itself, inside the component: the shortest cycle through it.
        paths: dict[str, list[Edge]] = {start: []}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt, edge in sorted(graph[node].items()):
                if nxt == start:
                    yield paths[node] + [edge]
                    queue = []
                    break
                if nxt in members and nxt not in paths:
                    paths[nxt] = paths[node] + [edge]
                    queue.append(nxt)


def test_no_import_cycles() -> None:
    graph: dict[str, dict[str, Edge]] = {}
    for edge in EDGES:
        if edge.how.startswith("dotted path") or edge.source == edge.target:
            continue
        if _top(edge.source) in CYCLES_IGNORED_IN or _top(edge.target) in CYCLES_IGNORED_IN:
            continue
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        graph.setdefault(edge.target, {})
    problems = [
        " → ".join([cycle[0].source] + [e.target for e in cycle]) + "\n      " + "\n      ".join(map(str, cycle))
        for cycle in _cycles(graph)
    ]
    _fail("import cycles", problems)


def _calls_register(tree: ast.Module) -> bool:
    """Whether a module calls core.purge.register (imported by name, or through the module)."""
    names = {"core.purge.register"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "core.purge":
            names.update(a.asname or a.name for a in node.names if a.name == "register")
        elif isinstance(node, ast.ImportFrom) and node.module == "core":
            names.update(f"{a.asname or a.name}.register" for a in node.names if a.name == "purge")
        elif isinstance(node, ast.Import):
            names.update(f"{a.asname}.register" for a in node.names if a.name == "core.purge" and a.asname)
    return any(isinstance(node, ast.Call) and ast.unparse(node.func) in names for node in ast.walk(tree))


def test_every_data_store_is_imported_by_runtime_data() -> None:
    """runtime.data imports every module that registers a store, so deletion cannot miss one."""
    registering = set()
    for module, path in MODULES.items():
        if _top(module) not in LAYERS:
            continue
        if module != "core.purge" and _calls_register(ast.parse(path.read_text())):
            registering.add(module)
    assert registering, "no module registers a data store: has core.purge.register moved?"
    imported = {edge.target for edge in EDGES if edge.source == "runtime.data"}
    missing = sorted(registering - imported)
    assert not missing, f"runtime/data.py must import these modules (they register data stores): {missing}"


def test_architecture_doc_shows_the_order() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    assert " → ".join(LAYERS) in text, "docs/architecture.md must show the layer order of tests/test_layering.py"
