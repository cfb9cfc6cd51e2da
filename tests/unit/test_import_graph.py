"""The package's own import graph (issue 17): no cycles, and the layers import only downward.

Every import counts: module level, inside functions, and under ``TYPE_CHECKING`` (a type-only cycle is
still two modules that cannot be understood apart). The graph is read from the source with ``ast``;
importing ``a.b.c`` depends on module ``a.b.c`` (or the deepest package of it that exists).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import mcp_orchestrator

PACKAGE = Path(mcp_orchestrator.__file__).parent
# The stacked layers, top to bottom: each imports only layers below it.
LAYERS = ["server", "service", "strategies", "engine", "runtimes", "store"]
# Beside the stack, used by the service: they never import the service or the server.
BESIDE = ["observability", "gateway"]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for the package in ``root``."""
    name = root.name
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(pkg + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target == name or target.startswith(name + "."):
                    found = resolve(target)
                    if found and found != module:
                        graph[module].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 50  # the walk saw the package
    assert cycles(graph) == []


def test_layers_import_only_downward_and_observability_never_imports_the_service() -> None:
    wrong = []
    for module, targets in import_graph(PACKAGE).items():
        for target in targets:
            lm, lt = _layer(module), _layer(target)
            if lm in LAYERS and lt in LAYERS and LAYERS.index(lt) < LAYERS.index(lm):
                wrong.append(f"{module} -> {target}")
            if lm in BESIDE and lt in ("service", "server", "strategies"):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_walk_finds_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    pkg = tmp_path / "mcp_orchestrator"
    for sub in ("store", "service", "observability"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    type_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..service import run\n"
    (pkg / "store" / "docs.py").write_text(type_only)
    (pkg / "service" / "run.py").write_text("def f():\n    from mcp_orchestrator.store.docs import x\n")
    (pkg / "observability" / "log.py").write_text("import mcp_orchestrator.service.run\n")
    graph = import_graph(pkg)
    assert cycles(graph) == [["mcp_orchestrator.service.run", "mcp_orchestrator.store.docs"]]
    assert "mcp_orchestrator.service.run" in graph["mcp_orchestrator.observability.log"]
