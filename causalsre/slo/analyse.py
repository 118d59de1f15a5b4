"""One SLO at one moment: the budget report, and optionally per-run attainment and the burn-rate timeline,
all from a single counting pass (:mod:`causalsre.slo.cube`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from causalsre.errors import UserError
from causalsre.slo.budget import alert_windows_for, summarize
from causalsre.slo.columns import database_columns
from causalsre.slo.cube import CubePlan, count_cube, slice_counts, window_counts
from causalsre.slo.durations import Duration, parse_duration, parse_time
from causalsre.slo.goodput import runs_from_counts
from causalsre.slo.period import data_span, no_match, period_at
from causalsre.slo.rolling import pick_resolution, timeline_from_buckets
from causalsre.slo.sql import where_sql
from causalsre.slo.windows import AlertWindows


@dataclass
class Analysis:
    report: dict[str, Any]
    runs: pd.DataFrame | None = None
    timeline: pd.DataFrame | None = None


def analyse(
    con: duckdb.DuckDBPyConnection,
    slo: Any,
    *,
    at: str | datetime | None = None,
    where: Mapping[str, Any] | None = None,
    group_by: Sequence[str] = (),
    alert_windows: AlertWindows | None = None,
    min_events: int = 1,
    per_run: bool = False,
    timeline: bool = False,
    resolution: str | Duration | None = None,
) -> Analysis:
    """Count once, then build the report (and, as asked, runs and timeline) from the counts."""
    if min_events < 1:
        raise UserError(f"min_events {min_events} is below 1", "use 1 or more")
    if isinstance(resolution, str):  # checked even when no timeline is drawn: a typo is never silently ignored
        resolution = parse_duration(resolution, what="resolution")
    columns = database_columns(con)
    filters, filter_params = where_sql(where, columns)
    first = None
    if at is None or (timeline and resolution is None):
        try:
            first, latest = data_span(con, filters, filter_params)
        except UserError:
            raise no_match(con, where, columns) from None
    moment = parse_time(at, what="--at") if at is not None else latest
    period = period_at(slo, moment)
    windows = alert_windows_for(slo, alert_windows)
    spans = sorted({t.long_window for t in windows.tiers} | {t.short_window for t in windows.tiers},
                   key=lambda d: d.seconds)
    plan = CubePlan(slo=slo, period=period, spans=spans, group_by=list(group_by), per_run=per_run,
                    span=(first, latest) if first is not None else None)
    if timeline:
        if resolution is None:
            start = max(first, period.lower) if first is not None else period.lower
            resolution = pick_resolution(max((moment - start).total_seconds(), 1.0))
            # never coarser than the shortest long window, so every plotted window is exact
            shortest = min((t.long_window for t in windows.tiers), key=lambda d: d.seconds, default=None)
            if shortest is not None and shortest.seconds < resolution.seconds:
                resolution = shortest
        plan.bucket_us = int(resolution.seconds * 1_000_000)
        plan.lookback_s = max((t.long_window.seconds for t in windows.tiers), default=0.0) + resolution.seconds
    cube = count_cube(con, plan, columns, filters, filter_params)
    keys = [f"g{i}" for i in range(len(group_by))]
    counts = window_counts(cube["windows"], spans, [])
    slices: dict[tuple, dict] = {}
    if plan.slice_us:
        slices = slice_counts(cube["slices"], [], slo.time_slice_target, min_events)
    if keys:
        counts.update(window_counts(cube["group_windows"], spans, keys))
        if plan.slice_us:
            slices.update(slice_counts(cube["group_slices"], keys, slo.time_slice_target, min_events))
    results = {key: summarize(slo, period, windows, spans, row, slices.get(key), min_events)
               for key, row in counts.items()}
    report = results.get((), summarize(slo, period, windows, spans, None, None, min_events))
    report["window"] = period.as_dict()
    if group_by:
        report["group_by"] = list(group_by)
        report["groups"] = [
            {"group": dict(zip(group_by, key, strict=True)), **value}
            for key, value in sorted(results.items(), key=lambda kv: tuple(map(str, kv[0])))
            if key != ()
        ]
    analysis = Analysis(report=report)
    if per_run:
        analysis.runs = runs_from_counts(cube["runs"])
    if timeline:
        analysis.timeline = timeline_from_buckets(con, cube["buckets"], slo, windows, plan.bucket_us, moment, min_events)
    return analysis
