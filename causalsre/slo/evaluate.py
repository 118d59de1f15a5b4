"""Error-budget status of an SLO at one moment, overall and per group, from counts made in DuckDB.

Every ratio is a sum of counts divided by a sum of counts over the same requests: the SLI of a group of
runs is never the average of the runs' SLIs. A window with fewer than ``min_events`` requests is no-data:
its ratios are ``None`` and its alerts do not fire. The arithmetic is :mod:`causalsre.slo.budget`; the
single counting pass is :mod:`causalsre.slo.analyse`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from causalsre.slo.analyse import analyse
from causalsre.slo.budget import alert_windows_for, summarize, time_to_exhaustion_s
from causalsre.slo.windows import AlertWindows

__all__ = ["alert_windows_for", "evaluate", "summarize", "time_to_exhaustion_s"]


def evaluate(
    con: duckdb.DuckDBPyConnection,
    slo: Any,
    *,
    at: str | datetime | None = None,
    where: Mapping[str, Any] | None = None,
    group_by: Sequence[str] = (),
    alert_windows: AlertWindows | None = None,
    min_events: int = 1,
) -> dict[str, Any]:
    """The report of one SLO at ``at``: totals plus, with ``group_by``, a ``groups`` list of the same fields.

    Fields: name, objective, budgeting_method, at, events, bad_events, sli, error_ratio, error_budget,
    budget_consumed, budget_remaining, burn_rate, alerts (one per tier), current_burn_rate (over the
    shortest long window), time_to_exhaustion_s, window; Timeslices methods add slices and error_budget_s.
    """
    return analyse(con, slo, at=at, where=where, group_by=group_by, alert_windows=alert_windows,
                   min_events=min_events).report
