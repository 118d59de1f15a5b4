"""Damaged and locked databases: every command refuses them in one line and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.badinput.conftest import World, build_world, run_cli
from tests.badinput.test_corpus import resolve
from tests.conftest import REPO_ROOT

# A writer process that holds databases open for writing until its stdin closes.
HOLDER = """
import sys
from causalsre.telemetry import connect_writable
cons = [connect_writable(path) for path in sys.argv[1:]]
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("name", ["older", "newer", "missing_table"])
def test_db_check_reports_a_damaged_database_with_exit_1_and_changes_nothing(name, world, capsys):
    # `db check` diagnoses databases, so a damaged one is its normal input: exit 1 and a list of problems.
    before = world.fingerprint()
    code, out, err = run_cli(["db", "check", str(world.path(f"{name}.duckdb"))], capsys)
    assert code == 1, (out, err)
    assert "problem:" in out and "FAILED" in out
    assert "Traceback" not in out + err
    assert world.fingerprint() == before


LOCKED_CASES = [
    ("db-info", ["db", "info", "{good.duckdb}"]),
    ("db-import", ["db", "import", "requests", "{req_negative.csv}", "--db", "{good.duckdb}"]),
    ("slo-report", ["slo", "report", "--db", "{good.duckdb}", "--slo", "{slo.yaml}"]),
    ("harness-run", ["harness", "run", "{run_ok.toml}", "--db", "{good.duckdb}"]),
    ("fit", ["fit", "--db", "{suite.duckdb}", "--slo", "{slo.yaml}", "--sampler", "prior"]),
    ("whatif", ["whatif", "--db", "{suite.duckdb}", "--slo", "{slo.yaml}", "--window", "phase:incident",
                "--set", "max_num_seqs=8"]),
    ("recommend", ["recommend", "--db", "{suite.duckdb}", "--slo", "{slo.yaml}", "--window", "phase:incident"]),
    ("effect", ["effect", "--db", "{suite.duckdb}", "--slo", "{slo.yaml}", "--treatment", "max_num_seqs"]),
    ("harness-replay", ["harness", "replay", "{suite.duckdb}", "burstier-s0", "--window", "incident", "--db",
                        "{empty_db.duckdb}"]),
]


@pytest.fixture(scope="module")
def locked_world(tmp_path_factory):
    """A world whose good, suite and empty databases a separate writer process holds open."""
    world = build_world(tmp_path_factory.mktemp("locked"))
    paths = [str(world.path(n)) for n in ("good.duckdb", "suite.duckdb", "empty_db.duckdb")
             if world.path(n).is_file()]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, *paths], cwd=REPO_ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield world
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


@pytest.mark.parametrize("case_id,argv", LOCKED_CASES, ids=[c[0] for c in LOCKED_CASES])
def test_a_database_locked_by_a_writer_is_refused_in_one_line(case_id, argv, locked_world: World, capsys):
    if "{suite.duckdb}" in argv and not locked_world.path("suite.duckdb").is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    before = locked_world.fingerprint()
    code, out, err = run_cli(resolve(argv, locked_world.root), capsys)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "locked by another process" in err and "wait for the writer" in err
    assert "Traceback" not in out + err
    assert locked_world.fingerprint() == before
