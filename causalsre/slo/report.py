"""The full report of several SLOs: budget status, alerts, attainment and goodput per run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from causalsre.slo.evaluate import evaluate
from causalsre.slo.goodput import attainment_by_run
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
) -> list[dict[str, Any]]:
    """One dict per SLO (see :func:`causalsre.slo.evaluate.evaluate`), plus ``runs`` with attainment/goodput."""
    reports = []
    for slo in slos:
        report = evaluate(con, slo, at=at, where=where, group_by=group_by, alert_windows=alert_windows,
                          min_events=min_events)
        if per_run:
            runs = attainment_by_run(con, slo, where)
            report["runs"] = [
                {key: _plain(value) for key, value in row.items()} for row in runs.to_dict(orient="records")
            ]
        reports.append(report)
    return reports


def _plain(value: Any) -> Any:
    """JSON-friendly scalars: numpy numbers to Python, NaN to None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
