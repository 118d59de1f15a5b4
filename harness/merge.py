"""Copying runs between telemetry databases (Ray sweeps merge per-run files; datasets are compacted)."""

from __future__ import annotations

from pathlib import Path

from causalsre.telemetry import connect_writable
from causalsre.telemetry.schema import first_row

# Tables in an order that keeps each run's rows together; names are ours, never user text.
# Every table with per-run rows: one left out here is silently lost by every sweep merge and dataset compaction
# (the scraped /metrics and operator events once were).
RUN_TABLES = ("runs", "requests", "tokens", "steps", "events", "faults", "phases", "run_settings",
              "metric_samples", "operator_events", "control_actions")
ORDER_BY = {"runs": "started_at", "requests": "run_id, request_id", "tokens": "run_id, request_id, token_index",
            "steps": "run_id, step_id", "events": "run_id, ts_ns", "faults": "run_id, fault_id",
            "phases": "run_id, start_ns", "run_settings": "run_id, setting, start_ns",
            "metric_samples": "run_id, ts_ns, metric", "operator_events": "run_id, ts_ns",
            "control_actions": "run_id, ts_ns"}


def copy_runs(sources: list[str | Path], target: str | Path) -> int:
    """Append every run of each source database to ``target`` (created if missing); returns runs copied."""
    con = connect_writable(target)
    copied = 0
    try:
        for number, source in enumerate(sources):
            alias = f"src{number}"
            con.execute(f"ATTACH ? AS {alias} (READ_ONLY)", [str(source)])
            try:
                con.execute("BEGIN TRANSACTION")
                for table in RUN_TABLES:
                    con.execute(f"INSERT INTO main.{table} BY NAME SELECT * FROM {alias}.{table} "
                                f"ORDER BY {ORDER_BY[table]}")
                copied += first_row(con.execute(f"SELECT count(*) FROM {alias}.runs"))[0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.execute(f"DETACH {alias}")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return copied


def keep_only_runs(target: str | Path, run_ids: list[str]) -> int:
    """Delete from ``target`` every run not in ``run_ids`` (a run copied in just before an interruption, which
    no record lists); returns how many runs were deleted."""
    con = connect_writable(target)
    try:
        con.execute("CREATE TEMP TABLE keep_ids (run_id VARCHAR)")
        if run_ids:
            con.executemany("INSERT INTO keep_ids VALUES (?)", [[r] for r in run_ids])
        stray = first_row(con.execute("SELECT count(*) FROM runs WHERE run_id NOT IN (SELECT run_id FROM keep_ids)"))[0]
        if stray:
            con.execute("BEGIN TRANSACTION")
            for table in RUN_TABLES:
                con.execute(f"DELETE FROM main.{table} WHERE run_id NOT IN (SELECT run_id FROM keep_ids)")
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        return stray
    finally:
        con.close()


SMALL_BLOCK_SIZE = 16384  # bytes; DuckDB's default 256 KiB blocks make a small dataset mostly padding


def compact(source: str | Path, target: str | Path) -> None:
    """Copy every run of ``source`` into a new database with small blocks and rows in run order."""
    import duckdb

    from causalsre.telemetry import migrate

    from causalsre.safeio import remove_file

    target = Path(target)
    remove_file(target)  # a regular file only: `python -m harness.merge SRC /dev/null` once removed the device
    con = duckdb.connect(str(target), config={"default_block_size": str(SMALL_BLOCK_SIZE)})
    try:
        migrate(con)
    finally:
        con.close()
    copy_runs([source], target)


if __name__ == "__main__":  # python -m harness.merge SOURCE TARGET: a compacted copy for shipping
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m harness.merge SOURCE.duckdb TARGET.duckdb")
    compact(sys.argv[1], sys.argv[2])
