"""Copying runs between databases keeps every per-run table (sweep merges, dataset compaction)."""

from __future__ import annotations

import duckdb

from causalsre.telemetry import connect_writable
from harness.merge import RUN_TABLES, compact, copy_runs


def _one_run_of_everything(path) -> None:
    con = connect_writable(path)
    con.execute("INSERT INTO runs (run_id, kind, name, started_at, status, config_json) "
                "VALUES ('r1', 'harness', 'r1', TIMESTAMP '2026-01-01 00:00:00', 'complete', '{}')")
    con.execute("INSERT INTO metric_samples (run_id, ts_ns, metric, value) VALUES ('r1', 5, 'vllm:num_requests_waiting', 3)")
    con.execute("INSERT INTO operator_events (run_id, ts_ns, key, value, kind) VALUES ('r1', 7, 'max_num_seqs', '4', 'config')")
    con.execute("INSERT INTO control_actions (run_id, ts_ns, action, tier, reason) "
                "VALUES ('r1', 9, 'shed_level', 'premium', 'page')")
    con.close()


def test_every_table_holding_run_rows_is_copied(tmp_path):
    source = tmp_path / "a.duckdb"
    _one_run_of_everything(source)
    con = duckdb.connect(str(source), read_only=True)
    with_run_id = {t for (t,) in con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'run_id' "
        "AND table_schema = 'main' AND table_name IN (SELECT table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE')").fetchall()}
    con.close()
    assert with_run_id <= set(RUN_TABLES), f"tables with run rows that a merge would drop: {with_run_id - set(RUN_TABLES)}"
    merged, compacted = tmp_path / "m.duckdb", tmp_path / "c.duckdb"
    assert copy_runs([source], merged) == 1
    compact(source, compacted)
    for path in (merged, compacted):
        con = duckdb.connect(str(path), read_only=True)
        for table in ("metric_samples", "operator_events", "control_actions"):
            assert con.execute(f"SELECT count(*) FROM {table} WHERE run_id = 'r1'").fetchone()[0] == 1, (path, table)
        con.close()
