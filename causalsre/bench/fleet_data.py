"""A fleet's request history as Hive-partitioned Parquet, one folder per day, written in bounded memory.

The requests are those of :mod:`causalsre.bench.slo` (``range()`` and ``hash()`` inside DuckDB, so a seed gives
the same data), spread over ``days`` days and 10 runs and 4 tenants, with an incident (25 % timeouts) in the
last three hours, written with request_metrics' columns (the derived metrics as the view defines them).
Generation runs in chunks of ``chunk`` requests, each appended to the dataset, so memory does not grow with N.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import duckdb

T0 = datetime(2026, 1, 1)
NUM_RUNS = 10
CHUNK = 5_000_000

# Derived columns as in telemetry/sql/0002 (request_metrics); a/ttft/tpot in ns from the arrival.
_CHUNK_SQL = """
SELECT 'run-' || (i % $runs) AS run_id, i AS request_id, ['a', 'b', 'c', 'd'][1 + (h1 % 4)::INT] AS tenant,
       (h1 % 3)::INT AS priority, 100 AS prompt_tokens, o AS output_tokens, status, a AS arrival_ns,
       make_timestamp(epoch_us($t0::TIMESTAMP) + a // 1000) AS arrival_ts, 0.0::DOUBLE AS queue_s,
       ttft / 1e9 AS ttft_s, CASE WHEN o > 1 THEN tpot / 1e9 END AS tpot_s,
       (ttft + tpot * (o - 1)) / 1e9 AS e2e_s, status = 'ok' AS is_ok,
       strftime(make_timestamp(epoch_us($t0::TIMESTAMP) + a // 1000), '%Y-%m-%d') AS day
FROM (
    SELECT i, a, h1, o, ttft, tpot,
           CASE WHEN u3 < 0.002 OR (a >= $incident AND u3 < 0.25) THEN 'timeout'
                WHEN u3 < 0.003 THEN 'rejected' ELSE 'ok' END AS status
    FROM (
        SELECT i, a, h1, 1 + (h2 % 200)::INT AS o, u3,
               CAST((0.05 + 0.5 * pow(u1, 30)) * 1e9 AS BIGINT) AS ttft,
               CAST((0.01 + 0.041 * pow(u2, 40)) * 1e9 AS BIGINT) AS tpot
        FROM (
            SELECT i, i * $step AS a, hash(i, $seed) AS h1, hash(i, $seed + 1) AS h2,
                   (hash(i, $seed + 2) % 1000003) / 1000003.0 AS u1,
                   (hash(i, $seed + 3) % 1000003) / 1000003.0 AS u2,
                   (hash(i, $seed + 4) % 1000003) / 1000003.0 AS u3
            FROM range($lo, $hi) t(i))))
"""


def write_fleet(folder: str | Path, requests: int, days: int, seed: int = 0, *, threads: int = 2,
                chunk: int = CHUNK, progress=None) -> dict:
    """Write ``requests`` requests under ``folder/day=YYYY-MM-DD/``; returns rows, files, bytes and seconds."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message: None)
    period_ns = days * 86400 * 1_000_000_000
    params = {"runs": NUM_RUNS, "t0": T0, "step": period_ns // requests, "seed": seed,
              "incident": period_ns - 3 * 3600 * 1_000_000_000}
    started = time.perf_counter()
    con = duckdb.connect()
    try:
        con.execute("SET threads = ?", [int(threads)])
        con.execute("SET memory_limit = '2GB'")  # a chunk is streamed to its files; this only caps the buffers
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")
        for lo in range(0, requests, chunk):
            hi = min(requests, lo + chunk)
            relation = con.sql(_CHUNK_SQL, params={**params, "lo": lo, "hi": hi})
            relation.write_parquet(str(out), partition_by=["day"], append=True, row_group_size=1_000_000)
            say(f"wrote {hi:,} of {requests:,} requests")
    finally:
        con.close()
    files = list(out.rglob("*.parquet"))
    return {"rows": requests, "days": days, "files": len(files),
            "bytes": sum(f.stat().st_size for f in files), "seconds": round(time.perf_counter() - started, 2)}
