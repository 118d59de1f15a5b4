"""Burn-rate timeline at a chosen resolution, and the budget burn-down over the period.

Requests are counted into fixed buckets (aligned to the Unix epoch) in DuckDB; the rolling burn rate over
each alert tier's long window is a window-function sum of bucket counts (``RANGE k-1 PRECEDING``), so a
window is rounded up to whole buckets. Windows with fewer than ``min_events`` requests are no-data (NaN).
The counting is :mod:`causalsre.slo.analyse`; the rolling sums are :mod:`causalsre.slo.rolling`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from causalsre.slo.analyse import analyse
from causalsre.slo.durations import Duration
from causalsre.slo.rolling import MAX_BUCKETS, pick_resolution, timeline_from_buckets
from causalsre.slo.windows import AlertWindows

__all__ = ["MAX_BUCKETS", "burn_rate_timeline", "pick_resolution", "timeline_from_buckets"]


def burn_rate_timeline(
    con: duckdb.DuckDBPyConnection,
    slo: Any,
    *,
    at: str | datetime | None = None,
    where: Mapping[str, Any] | None = None,
    resolution: str | Duration | None = None,
    alert_windows: AlertWindows | None = None,
    min_events: int = 1,
) -> pd.DataFrame:
    """One row per bucket from the first request of the period to ``at``.

    Columns: ``ts`` (bucket end), ``events``, ``bad_events``, ``burn_rate`` (within the bucket), one
    ``burn_rate_<L>`` per distinct long alert window L, ``budget_consumed`` and ``budget_remaining``
    (cumulative bad events of the period so far over the budget of all the period's events).
    """
    return analyse(con, slo, at=at, where=where, alert_windows=alert_windows, min_events=min_events,
                   timeline=True, resolution=resolution).timeline
