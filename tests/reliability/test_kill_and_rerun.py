"""A harness killed mid-run, analysis while it writes, and a re-run with the same seed into the same database.

tests/harness/test_sigkill.py proves the killed database opens with intact flushed requests; here we cover
what comes around it: analysis commands started while the harness holds the file, what they read right
after the kill, and that re-running the same config and seed adds one new run without touching (or
duplicating) the killed one's rows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from harness.runner import prepare, run
from tests.conftest import REPO_ROOT
from tests.harness.conftest import tiny_config

SLO = REPO_ROOT / "models" / "slos" / "llm-serving.yaml"
CHILD = """
import sys
from tests.harness.conftest import tiny_config
from harness.runner import run
run(tiny_config(duration_s=60.0, workload={"rate": 8.0}), sys.argv[1], seed=0, run_id="killed")
"""
COUNTED = ("requests", "tokens", "steps", "events", "run_settings")


def _counts(db: Path, run_id: str) -> dict[str, int]:
    con = connect_readonly(db)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]).fetchone()[0]
                for t in COUNTED}  # table names from our own tuple, the run id bound
    finally:
        con.close()


def _cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Start a 60 s harness run, let it flush, record what analysis says meanwhile, then SIGKILL it."""
    db = tmp_path_factory.mktemp("kill") / "k.duckdb"
    wal = Path(str(db) + ".wal")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], cwd=REPO_ROOT, env=env)
    during: dict[str, tuple[int, str, str]] = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (wal.exists() and wal.stat().st_size > 30_000):
            assert child.poll() is None, "the run ended before it was killed"
            time.sleep(0.2)
        capsys = _Capture()
        for name, argv in (("db info", ["db", "info", db]), ("slo report", ["slo", "report", "--db", db, "--slo", SLO]),
                           ("db import", ["db", "import", "requests", REPO_ROOT / "tests" / "fixtures" /
                                          "requests_small.csv", "--db", db])):
            during[name] = capsys.run(argv)
        # The fix the lock message suggests: copy the file (and its WAL) and analyse the copy.
        snapshot = db.with_name("snapshot.duckdb")
        shutil.copy(db, snapshot)
        if wal.exists():
            shutil.copy(wal, str(snapshot) + ".wal")
        during["slo report of a copy"] = capsys.run(["slo", "report", "--db", snapshot, "--slo", SLO, "--json"])
        assert child.poll() is None, "the run ended before it was killed"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    return db, during


class _Capture:
    """Run the CLI in-process and capture its output without pytest's function-scoped capsys."""

    def run(self, argv) -> tuple[int, str, str]:
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
        return code, out.getvalue(), err.getvalue()


def test_analysis_while_the_harness_writes_is_refused_with_a_clear_message(killed):
    db, during = killed
    code, out, err = during.pop("slo report of a copy")
    assert code == 0, err  # a copy taken mid-run is a consistent snapshot: a prefix of what was flushed
    import json

    snapshot_events = json.loads(out)[0]["events"]
    assert 0 < snapshot_events <= _counts(db, "killed")["requests"]
    for name, (code, out, err) in during.items():
        assert code == 2, (name, out, err)
        assert err.startswith("error: ") and err.count("\n") == 1, (name, err)
        assert "locked by another process" in err and "wait for the writer" in err, (name, err)
        assert "Traceback" not in out + err


def test_after_the_kill_analysis_reads_a_consistent_snapshot(killed, capsys):
    db, _ = killed
    counts = _counts(db, "killed")
    assert counts["requests"] > 0 and counts["tokens"] > 0
    code, out, err = _cli(["slo", "report", "--db", db, "--slo", SLO, "--json"], capsys)
    assert code == 0, err
    import json

    report = json.loads(out)[0]
    con = connect_readonly(db)
    try:  # the report counts exactly the requests that were flushed, and every flushed request is whole
        assert report["events"] == con.execute("SELECT count(*) FROM request_metrics").fetchone()[0]
        torn = con.execute(
            "SELECT count(*) FROM requests r WHERE status = 'ok' AND output_tokens != (SELECT count(*) "
            "FROM tokens t WHERE t.run_id = r.run_id AND t.request_id = r.request_id)").fetchone()[0]
    finally:
        con.close()
    assert torn == 0


def test_a_rerun_with_the_same_seed_adds_one_run_and_duplicates_nothing(killed):
    db, _ = killed
    before = _counts(db, "killed")
    cfg = tiny_config(duration_s=2.0, workload={"rate": 8.0})
    _, _, _, schedule = prepare(cfg, 0)
    new_id = run(cfg, db, seed=0)
    assert new_id != "killed"
    assert _counts(db, "killed") == before  # the killed run is neither extended nor rewritten
    con = connect_readonly(db)
    try:
        statuses = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
        assert statuses == {"killed": "incomplete", new_id: "complete"}
        assert con.execute("SELECT count(*) FROM requests WHERE run_id = ?", [new_id]).fetchone()[0] \
            == len(schedule)
        for table, key in (("requests", "run_id, request_id"), ("tokens", "run_id, request_id, token_index"),
                           ("steps", "run_id, step_id")):
            dup = con.execute(f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY ALL HAVING count(*) > 1)")
            assert dup.fetchone()[0] == 0, table
    finally:
        con.close()


def test_a_rerun_under_the_killed_run_id_is_refused_and_changes_nothing(killed):
    db, _ = killed
    before = _counts(db, "killed")
    from causalsre.errors import UserError

    with pytest.raises(UserError, match="already in the database"):  # runs.run_id is the primary key
        run(tiny_config(duration_s=1.0), db, seed=0, run_id="killed")
    assert _counts(db, "killed") == before


def test_a_refused_rerun_does_not_make_a_dead_run_look_alive(tmp_path):
    from causalsre.errors import UserError
    from causalsre.telemetry import connect_writable
    from harness.writer import effective_status

    db = tmp_path / "d.duckdb"
    run(tiny_config(duration_s=0.5), db, seed=0, run_id="dead")
    con = connect_writable(db)
    con.execute("UPDATE runs SET status = 'running'")  # what a writer killed with SIGKILL leaves behind
    con.close()
    with pytest.raises(UserError):
        run(tiny_config(duration_s=0.5), db, seed=0, run_id="dead")
    con = connect_readonly(db)
    try:
        assert effective_status(con, "dead") == "incomplete"
    finally:
        con.close()
