"""Where the SLO functions read requests from: any DuckDB connection with a ``request_metrics`` relation.

A telemetry database has the view (:mod:`causalsre.telemetry`); :func:`parquet_source` gives the same name
to a folder of Parquet files holding request_metrics' columns (a fleet's history, Hive-partitioned per day or
per run, as ``causalsre db export`` writes), so every report, alert and timeline runs on it unchanged. DuckDB
reads the files lazily: filters on ``arrival_ts`` skip row groups by their statistics. The same statistics
in the files' footers give the data's first and last arrival without a scan (:data:`SPAN_TABLE`, which
:func:`causalsre.slo.period.data_span` checks against the rows before it trusts it).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from causalsre.errors import UserError

NEEDED = ("run_id", "request_id", "arrival_ts", "arrival_ns", "is_ok")
SPAN_TABLE = "request_metrics_span"  # a temp table: (first_ts, last_ts) read from the footers' statistics


def parquet_source(folder: str | Path, *, threads: int | None = None,
                   memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection whose ``request_metrics`` view reads ``folder/**/*.parquet`` (Hive partitions)."""
    root = Path(folder)
    if not root.is_dir() or not any(root.rglob("*.parquet")):
        raise UserError(f"{root} holds no Parquet files", "give a folder of request_metrics Parquet files")
    con = duckdb.connect()
    if threads is not None:
        con.execute("SET threads = ?", [int(threads)])
    if memory_limit is not None:
        con.execute("SET memory_limit = ?", [memory_limit])
    # Prefetching buys overlap for remote files; on local ones it cost about 5 % of the report's CPU at 10M
    # requests (an A/B of the counting query, 5 runs each, docs/benchmarks.md). Reading is otherwise the same.
    con.execute("SET disable_parquet_prefetching = true")
    # The relation API takes the path as a value: nothing a user typed is spliced into SQL.
    relation = con.read_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True)
    missing = [c for c in NEEDED if c not in relation.columns]
    if missing:
        con.close()
        raise UserError(f"the Parquet files in {root} lack {', '.join(missing)}",
                        "write request_metrics' columns (causalsre db export --parquet)")
    relation.create_view("request_metrics")
    if str(relation.types[relation.columns.index("arrival_ts")]) == "TIMESTAMP":
        # Footers only: microseconds for 100M requests, where min/max over the rows is a tenth of a report.
        con.execute(f"CREATE TEMP TABLE {SPAN_TABLE} AS SELECT min(TRY_CAST(stats_min_value AS TIMESTAMP)) "
                    "AS first_ts, max(TRY_CAST(stats_max_value AS TIMESTAMP)) AS last_ts FROM parquet_metadata(?) "
                    "WHERE path_in_schema = 'arrival_ts'", [str(root / "**" / "*.parquet")])
    return con
