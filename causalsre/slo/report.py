"""The full report of several SLOs: budget status, alerts, attainment and goodput per run, and (for plots)
the burn-rate timeline, each SLO counted in one pass over request_metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from causalsre.slo.analyse import analyse
from causalsre.slo.durations import Duration
from causalsre.slo.windows import AlertWindows


def build_report(
    con: duckdb.DuckDBPyConnection,
    slos: Sequence[Any],
    *,
    at: str | datetime | None = None,
    where: Mapping[str, Any] | None = None,
    group_by: Sequence[str] = (),
    alert_windows: AlertWindows | None = None,
    min_events: int = 1,
    per_run: bool = True,
    timelines: list[tuple[Any, pd.DataFrame]] | None = None,
    resolution: str | Duration | None = None,
) -> list[dict[str, Any]]:
    """One dict per SLO (the fields of :func:`causalsre.slo.evaluate.evaluate`) plus ``runs``: attainment and
    goodput of each run's requests within the period. Pass a list as ``timelines`` to receive
    (slo, burn_rate_timeline) pairs from the same pass."""
    reports = []
    for slo in slos:
        analysis = analyse(con, slo, at=at, where=where, group_by=group_by, alert_windows=alert_windows,
                           min_events=min_events, per_run=per_run, timeline=timelines is not None,
                           resolution=resolution)
        report = analysis.report
        if per_run:
            report["runs"] = [{key: _plain(value) for key, value in row.items()}
                              for row in analysis.runs.to_dict(orient="records")]
        if timelines is not None:
            timelines.append((slo, analysis.timeline))
        reports.append(report)
    return reports


def _plain(value: Any) -> Any:
    """JSON-friendly scalars: numpy numbers to Python, NaN to None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
