"""Every import statement of a source tree, read with :mod:`ast` (nothing is imported or executed).

An import inside a function or class body counts as much as one at module level: hiding an import in a
function changes when it runs, not which layer depends on which. Relative imports are resolved against the
importing module. ``from pkg import name`` is recorded as ``pkg.name``; :meth:`ImportGraph.resolve` maps it
to the module it loads (``pkg.name`` when that is a submodule, else ``pkg``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import networkx as nx


@dataclass(frozen=True, slots=True)
class Import:
    importer: str  # the importing module, e.g. "harness.runner"
    target: str  # what the statement names, e.g. "causalsre.telemetry.connect_writable"
    top_level: bool  # at module level (runs on import) rather than inside a function or class body
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root).as_posix()}:{self.line} {self.importer} -> {self.target}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _walk(node: ast.AST, top_level: bool):
    """(statement, top_level) for every import; a function or class body is not module level."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, top_level
        inner = top_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
        yield from _walk(child, inner)


def imports_of(path: Path, root: Path) -> list[Import]:
    module = module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for statement, top_level in _walk(ast.parse(path.read_text(), filename=str(path)), True):
        if isinstance(statement, ast.Import):
            targets = [alias.name for alias in statement.names]
        else:
            if statement.level:
                base = package[: len(package) - statement.level + 1]
                prefix = ".".join(base + ([statement.module] if statement.module else []))
            else:
                prefix = statement.module or ""
            targets = [f"{prefix}.{alias.name}" for alias in statement.names]
        found += [Import(module, target, top_level, path, statement.lineno) for target in targets]
    return found


class ImportGraph:
    """All imports of the packages under ``root``; ``modules`` maps module name -> file."""

    def __init__(self, root: Path, packages: Iterable[str]):
        self.root = root
        self.modules: dict[str, Path] = {}
        for package in packages:
            # rglob does not descend into symlinked folders (causalsre/_models points at models/)
            for path in sorted((root / package).rglob("*.py")):
                if any(part.startswith(".") for part in path.relative_to(root).parts):
                    continue
                self.modules[module_name(path, root)] = path
        self.imports = [imp for path in self.modules.values() for imp in imports_of(path, root)]

    def resolve(self, target: str) -> str | None:
        """The module of ours that an import target loads, or None for a third-party/stdlib name."""
        parts = target.split(".")
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            if name in self.modules:
                return name
        return None

    def graph(self, *, top_level_only: bool) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(self.modules)
        for imp in self.imports:
            if top_level_only and not imp.top_level:
                continue
            target = self.resolve(imp.target)
            if target is not None and target != imp.importer:
                graph.add_edge(imp.importer, target, where=imp.where(self.root))
        return graph

    def cycles(self, *, top_level_only: bool) -> list[list[str]]:
        """Each strongly connected group of modules (a cycle), with one edge per member to show where."""
        graph = self.graph(top_level_only=top_level_only)
        found = []
        for group in nx.strongly_connected_components(graph):
            if len(group) > 1:
                cycle = nx.find_cycle(graph.subgraph(group))
                found.append([graph.edges[edge]["where"] for edge in cycle])
        return sorted(found)
