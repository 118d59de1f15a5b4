"""A run killed with SIGKILL leaves a database that opens, holds every flushed request, and reads as incomplete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from causalsre.telemetry import connect_readonly, connect_writable
from harness.writer import effective_status, mark_stale_runs

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys
from tests.harness.conftest import tiny_config
from harness.runner import run
run(tiny_config(duration_s=60.0, workload={"rate": 8.0}), sys.argv[1], seed=0, run_id="killed")
"""


def test_sigkill_leaves_an_openable_incomplete_run(tmp_path):
    db = tmp_path / "k.duckdb"
    wal = Path(str(db) + ".wal")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], cwd=REPO, env=env)
    try:
        # Wait until the writer has flushed telemetry (the WAL grows), then a little longer, then kill.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (wal.exists() and wal.stat().st_size > 30_000):
            assert child.poll() is None, "the run ended before it was killed"
            time.sleep(0.2)
        time.sleep(1.5)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    con = connect_readonly(db)
    status = con.execute("SELECT status FROM runs WHERE run_id = 'killed'").fetchone()[0]
    assert status == "running" and effective_status(con, "killed") == "incomplete"
    num_requests, num_ok = con.execute("SELECT count(*), count(*) FILTER (WHERE is_ok) FROM request_metrics")\
        .fetchone()
    assert num_requests > 0 and num_ok > 0
    # Every flushed request is whole: its tokens are there, and its TTFT is computable.
    missing = con.execute(
        "SELECT count(*) FROM requests r WHERE status = 'ok' AND output_tokens != "
        "(SELECT count(*) FROM tokens t WHERE t.run_id = r.run_id AND t.request_id = r.request_id)").fetchone()[0]
    assert missing == 0
    assert con.execute("SELECT count(*) FROM run_settings").fetchone()[0] >= 17
    con.close()

    writer_con = connect_writable(db)  # the next writer marks the dead run
    assert mark_stale_runs(writer_con) == 1
    assert writer_con.execute("SELECT status FROM runs").fetchone()[0] == "incomplete"
    writer_con.close()
