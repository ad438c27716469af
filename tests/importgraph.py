"""Who imports whom, read from the source with :mod:`ast` (no third-party tool).

Every ``import`` and ``from ... import`` counts, wherever it stands: at the top, inside a function, or
under ``if TYPE_CHECKING:``. A name imported from a package resolves to its submodule when there is
one (``from sim.report import plots`` is an edge to ``sim.report.plots``); relative imports resolve
against the importing module's package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

__all__ = ["find_circles", "imported_names", "module_graph", "modules_under"]


def modules_under(base: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``packages`` (folders under ``base``)."""
    found: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((base / pkg).rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name ``module`` (the file ``path``) imports; ``from pkg import name`` gives
    ``pkg.name``, which :func:`module_graph` trims to the longest prefix that is a module."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            # base.name: the submodule when there is one, else (a class, a function) base itself
            names.update(base if a.name == "*" else f"{base}.{a.name}" for a in node.names)
    return names


def module_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Edges between the given modules only (imports of anything else are left out)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for name in imported_names(path, module):
            parts = name.split(".")
            while parts and ".".join(parts) not in modules:  # a.b.C (a class) -> module a.b
                parts.pop()
            target = ".".join(parts)
            if target and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def find_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import each other in a circle (strongly connected components of
    more than one module), sorted, with one circle path spelled out: ``[a, b, c, a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graphs here are a few hundred modules deep at most
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
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted((_circle_in(graph, g) for g in groups), key=lambda c: c[0])


def _circle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """One concrete circle through the group's first module (breadth-first, so the shortest)."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no circle through {start}")  # a strongly connected group always has one
