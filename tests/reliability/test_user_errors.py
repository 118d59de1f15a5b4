"""Every user error names its fix: ``error: <problem> (<fix>)`` is the CLI's contract (docs/reliability.md).

An AST scan of ``causalsre/`` and ``harness/``: each ``UserError(...)`` call passes a fix (a second argument or
``fix=``). Round 5 found 15 without one (a graph with a self-loop said only "is a self-loop", `attribute` with
an empty table only "the normal data has no rows"); a new one fails here. A call that forwards another error's
parts (``UserError(exc.problem, exc.fix)``) has two arguments and passes.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fixless(source: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "UserError"
            and len(node.args) < 2 and not any(k.arg == "fix" for k in node.keywords)
            and not any(isinstance(a, ast.Starred) for a in node.args)]


def test_every_user_error_names_a_fix():
    missing = []
    for top in ("causalsre", "harness"):
        for path in sorted((ROOT / top).rglob("*.py")):
            missing += [f"{path.relative_to(ROOT)}:{line}" for line in fixless(path.read_text(encoding="utf-8"))]
    assert not missing, "UserError without a fix (say what the user should do):\n" + "\n".join(missing)


def test_the_scan_sees_a_missing_fix():
    assert fixless("raise UserError('bad')\nraise UserError('bad', 'fix')\nraise UserError('bad', fix='x')\n"
                   "raise errors.UserError(f'{x}')\n") == [1, 4]


def test_a_self_loop_names_its_fix(tmp_path, capsys):
    from causalsre.cli.main import main

    spec = tmp_path / "loop.yaml"
    spec.write_text("version: 1\ntarget: b\nnodes:\n  a: {role: knob, family: batching, type: discrete}\n"
                    "  b: {role: outcome, family: outcome, type: binary}\nedges:\n  - [a, a]\n  - [a, b]\n")
    assert main(["graph", "show", "--graph", str(spec), "--out", str(tmp_path / "g.svg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a self-loop (remove it: a node cannot cause itself" in err
