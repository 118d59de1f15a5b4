"""The arithmetic of the burn-rate timeline: bucket counts -> rolling burn rates and the budget burn-down.

Requests are counted into fixed buckets (aligned to the Unix epoch) in DuckDB; the rolling burn rate over
each alert tier's long window is a window-function sum of bucket counts (``RANGE k-1 PRECEDING``), so a
window is rounded up to whole buckets. Windows with fewer than ``min_events`` requests are no-data (NaN).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from causalsre.errors import UserError
from causalsre.slo.durations import Duration, parse_duration
from causalsre.slo.windows import AlertWindows

_NICE_RESOLUTIONS = ["1s", "5s", "10s", "30s", "1m", "5m", "10m", "30m", "1h", "3h", "6h", "12h", "1d", "1w"]
MAX_BUCKETS = 50_000


def pick_resolution(span_s: float, points: int = 600) -> Duration:
    """The finest of a few round resolutions that shows ``span_s`` in at most ``points`` buckets."""
    for text in _NICE_RESOLUTIONS:
        if span_s / parse_duration(text).seconds <= points:
            return parse_duration(text)
    return parse_duration(_NICE_RESOLUTIONS[-1])


def timeline_from_buckets(con: duckdb.DuckDBPyConnection, buckets: pd.DataFrame, slo: Any, windows: AlertWindows, res_us: int, at: datetime,
                          min_events: int) -> pd.DataFrame:
    """Rolling sums over the (b, in_period, n, bad) bucket counts, in DuckDB over the small count table."""
    inside = buckets[buckets["in_period"].astype(bool)]
    if inside.empty:
        raise UserError(f"no requests in the period of SLO {slo.name} ending {at}", "check --at and the filter")
    first_b = int(inside["b"].min())
    last_b = _epoch_us(at) // res_us
    num_buckets = last_b - first_b + 1
    if num_buckets > MAX_BUCKETS:
        raise UserError(f"a {res_us / 1e6:g} s resolution gives {num_buckets} points", "choose a coarser --resolution")
    longs = sorted({tier.long_window for tier in windows.tiers}, key=lambda d: d.seconds)
    spans = {str(span): max(1, math.ceil(span.seconds * 1e6 / res_us)) for span in longs}
    rolling = "".join(
        f", sum(events) OVER w{i} AS events_{i}, sum(bad_events) OVER w{i} AS bad_{i}" for i in range(len(spans))
    )
    window_defs = ", ".join(
        f"w{i} AS (ORDER BY b RANGE BETWEEN {k - 1} PRECEDING AND CURRENT ROW)" for i, k in enumerate(spans.values())
    )
    counts = pd.DataFrame({
        "b": buckets["b"].astype("int64"), "in_period": buckets["in_period"].astype(bool),
        "n": buckets["n"].astype("int64"), "bad": buckets["bad"].astype("int64"),
    })
    sql = f"""
        WITH dense AS (
            -- every output bucket (empty ones too) plus the earlier buckets that hold data; RANGE frames
            -- then sum over bucket numbers, so the lookback needs no empty rows
            SELECT b, sum(n) AS events, sum(bad) AS bad_events,
                   sum(n) FILTER (WHERE in_period) AS period_events, sum(bad) FILTER (WHERE in_period) AS period_bad
            FROM (SELECT b, in_period, n, bad FROM counts WHERE b <= ?
                  UNION ALL SELECT b, true, 0, 0 FROM range(?, ?) r(b))
            GROUP BY b
        )
        SELECT b - ? AS b, events, bad_events, COALESCE(period_events, 0) AS period_events,
               COALESCE(period_bad, 0) AS period_bad{rolling}
        FROM dense {"WINDOW " + window_defs if window_defs else ""} ORDER BY b
    """
    cursor = con.cursor()  # a registered DataFrame is a temporary view, private to this cursor
    try:
        cursor.register("counts", counts)
        frame = cursor.execute(sql, [last_b, first_b, last_b + 1, first_b]).df()
    finally:
        cursor.close()
    return _finish(frame, slo, spans, first_b * res_us, res_us, min_events)


def _finish(frame: pd.DataFrame, slo, spans: dict[str, int], origin_us: int, res_us: int, min_events: int):
    budget = slo.error_budget
    total_period_events = frame["period_events"].sum()
    frame = frame[frame["b"] >= 0].reset_index(drop=True)
    out = pd.DataFrame({
        "ts": pd.to_datetime((origin_us + (frame["b"] + 1) * res_us).astype("int64"), unit="us"),
        "events": frame["events"].astype("int64"),
        "bad_events": frame["bad_events"].astype("int64"),
    })
    out["burn_rate"] = _burn(out["bad_events"], out["events"], budget, min_events)
    for i, name in enumerate(spans):
        out[f"burn_rate_{name}"] = _burn(frame[f"bad_{i}"], frame[f"events_{i}"], budget, min_events)
    denominator = budget * total_period_events
    consumed = frame["period_bad"].cumsum() / denominator if denominator > 0 else float("nan")
    out["budget_consumed"] = consumed
    out["budget_remaining"] = 1.0 - out["budget_consumed"]
    return out


def _burn(bad: pd.Series, events: pd.Series, budget: float, min_events: int) -> pd.Series:
    events = events.astype("float64")
    ratio = bad.astype("float64") / events.where(events >= max(min_events, 1))
    return ratio / budget if budget > 0 else ratio * float("nan")


def _epoch_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
