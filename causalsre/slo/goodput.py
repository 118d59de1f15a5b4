"""The LLM-serving views people compare with: SLO attainment and goodput per run.

Attainment (DistServe) is the share of a run's requests that are good events. Goodput (vLLM's
``benchmark_serving``) is good requests per second of benchmark duration, the time from the first
arrival to the last finish among the run's requests. Failed requests are never good, and count in the
denominator of attainment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import pandas as pd

from causalsre.slo.columns import database_columns
from causalsre.slo.sql import good_event_sql, where_sql


def attainment_by_run(
    con: duckdb.DuckDBPyConnection, slo: Any, where: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """run_id, events, good_events, attainment, duration_s, goodput_rps, request_rps; one row per run."""
    columns = database_columns(con)
    good, good_params = good_event_sql(slo, columns)
    filters, filter_params = where_sql(where, columns)
    sql = f"""
        SELECT run_id, count(*) AS events, count(*) FILTER (WHERE is_good) AS good_events,
               count(*) FILTER (WHERE is_good)::DOUBLE / count(*) AS attainment,
               (max(arrival_ns + COALESCE(e2e_s, 0) * 1e9) - min(arrival_ns)) / 1e9 AS duration_s
        FROM (SELECT run_id, arrival_ns, e2e_s, {good} AS is_good FROM request_metrics WHERE {filters})
        GROUP BY run_id ORDER BY run_id
    """
    frame = con.execute(sql, good_params + filter_params).df()
    duration = frame["duration_s"].where(frame["duration_s"] > 0)
    frame["goodput_rps"] = frame["good_events"] / duration
    frame["request_rps"] = frame["events"] / duration
    return frame


def runs_from_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """The same columns as :func:`attainment_by_run`, from the counting pass's (run_id, in_period) counts,
    over each run's requests within the SLO period."""
    inside = frame[frame["in_period"].astype(bool)]
    events = inside["n"].astype("int64")
    good = events - inside["bad"].astype("int64")
    duration = ((inside["last_ns"] - inside["first_ns"]) / 1e9).astype("float64")
    out = pd.DataFrame({
        "run_id": inside["run_id"].astype(str), "events": events, "good_events": good,
        "attainment": good / events, "duration_s": duration,
    })
    positive = out["duration_s"].where(out["duration_s"] > 0)
    out["goodput_rps"] = out["good_events"] / positive
    out["request_rps"] = out["events"] / positive
    return out.sort_values("run_id").reset_index(drop=True)
