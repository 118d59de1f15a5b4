"""The import checker itself finds what it is meant to find, on a small package with known answers."""

from __future__ import annotations

from tests.architecture.imports import ImportGraph


def _package(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cycles_through_function_bodies_and_relative_imports_are_found(tmp_path):
    _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import f\n",
        "pkg/b.py": "def f():\n    from . import c\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/d.py": "import os\nfrom pkg import a\n",
    })
    graph = ImportGraph(tmp_path, ["pkg"])
    assert graph.cycles(top_level_only=True) == []
    [cycle] = graph.cycles(top_level_only=False)
    assert {step.split()[1] for step in cycle} == {"pkg.a", "pkg.b", "pkg.c"}
    assert graph.resolve("pkg.a.f") == "pkg.a" and graph.resolve("os.path") is None


def test_function_level_imports_are_recorded_as_such(tmp_path):
    _package(tmp_path, {"pkg/__init__.py": "", "pkg/x.py": "import json\n\nclass K:\n    def m(self):\n        import pkg\n"})
    graph = ImportGraph(tmp_path, ["pkg"])
    assert {(i.target, i.top_level) for i in graph.imports} == {("json", True), ("pkg", False)}
