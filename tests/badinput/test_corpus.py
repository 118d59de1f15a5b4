"""Every bad input: exit code 2, one line naming the problem and the fix, no traceback, nothing changed."""

from __future__ import annotations

import pytest

from tests.badinput.conftest import run_cli

# (case id, argv with {file} placeholders resolved inside the world folder, fragment of the error)
CASES: list[tuple[str, list[str], str]] = [
    # databases
    ("db-info-missing-file", ["db", "info", "{nope.duckdb}"], "does not exist"),
    ("db-info-not-a-database", ["db", "info", "{not_a_db.duckdb}"], "cannot open"),
    ("db-info-older-schema", ["db", "info", "{older.duckdb}"], "older than this causalsre reads"),
    ("db-info-newer-schema", ["db", "info", "{newer.duckdb}"], "newer than this causalsre supports"),
    ("db-info-missing-table", ["db", "info", "{missing_table.duckdb}"], "missing table"),
    ("db-export-older", ["db", "export", "{older.duckdb}", "--parquet", "{out}"], "db migrate"),
    ("db-migrate-missing", ["db", "migrate", "{nope.duckdb}"], "does not exist"),
    ("db-init-newer", ["db", "init", "{newer.duckdb}"], "newer"),
    ("db-init-in-missing-folder", ["db", "init", "{nofolder/x.duckdb}"], "does not exist"),
    # imports
    ("import-missing-file", ["db", "import", "requests", "{nope.csv}", "--db", "{good.duckdb}"], "does not exist"),
    ("import-into-newer", ["db", "import", "requests", "{nope.csv}", "--db", "{newer.duckdb}"], "newer"),
    ("import-vllm-not-json", ["db", "import", "vllm-bench", "{empty.yaml}", "--db", "{good.duckdb}"],
     "not valid JSON"),
    # flags
    ("unknown-flag", ["db", "info", "{good.duckdb}", "--colour"], "No such option"),
    ("unknown-command", ["frobnicate"], "No such command"),
    ("missing-required-flag", ["db", "import", "requests", "{nope.csv}"], "Missing option"),
]


def resolve(argv: list[str], root) -> list[str]:
    out = []
    for arg in argv:
        if arg.startswith("{") and arg.endswith("}"):
            out.append(str(root / arg[1:-1]))
        else:
            out.append(arg)
    return out


@pytest.mark.parametrize("case_id,argv,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case_id, argv, fragment, world, capsys):
    before = world.fingerprint()
    code, out, err = run_cli(resolve(argv, world.root), capsys)
    assert code == 2, (case_id, out, err)
    assert fragment.lower() in err.lower(), err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + out
    assert world.fingerprint() == before
