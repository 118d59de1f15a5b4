"""Error-budget status of an SLO at one moment, overall and per group, counted in one DuckDB scan.

Every ratio is a sum of counts divided by a sum of counts over the same requests: the SLI of a group of
runs is never the average of the runs' SLIs. A window with fewer than ``min_events`` requests is no-data:
its ratios are ``None`` and its alerts do not fire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb

from causalsre.errors import UserError
from causalsre.slo.columns import database_columns, group_expression
from causalsre.slo.durations import Duration
from causalsre.slo.period import Period, period_at, resolve_at
from causalsre.slo.sql import good_event_sql, where_sql
from causalsre.slo.windows import AlertWindows, google_windows


def alert_windows_for(slo: Any, override: AlertWindows | None = None) -> AlertWindows:
    """The tiers an SLO is alerted with: an explicit catalog (whose period must match) or the Workbook's."""
    windows = override or slo.alert_windows
    if windows is None:
        return google_windows(slo.window.duration)
    if windows.period.seconds != slo.window.duration.seconds:
        raise UserError(
            f"alert windows from {windows.source} are for a {windows.period} period but SLO {slo.name} "
            f"has a {slo.window.duration} window",
            "use an AlertWindows catalog with the same sloPeriod (as Sloth requires), or none for the default",
        )
    return windows


def time_to_exhaustion_s(budget_remaining: float | None, burn_rate: float | None, period_s: float) -> float | None:
    """Seconds until the remaining budget is spent at a constant burn rate (SRE Workbook: 1x lasts P)."""
    if budget_remaining is None or burn_rate is None:
        return None
    if budget_remaining <= 0:
        return 0.0
    if burn_rate <= 0:
        return None
    return budget_remaining * period_s / burn_rate


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
    """The report of one SLO at ``at``: totals plus, with ``group_by``, a ``groups`` list of the same fields."""
    if min_events < 1:
        raise UserError(f"min_events {min_events} is below 1", "use 1 or more")
    columns = database_columns(con)
    filters, filter_params = where_sql(where, columns)
    moment = resolve_at(con, at, filters, filter_params)
    period = period_at(slo, moment)
    windows = alert_windows_for(slo, alert_windows)
    spans = sorted({tier.long_window for tier in windows.tiers} | {tier.short_window for tier in windows.tiers},
                   key=lambda d: d.seconds)
    keys = [group_expression(name) for name in group_by]
    query = _CountQuery(slo, columns, period, filters, filter_params, keys)
    counts = query.window_counts(con, spans)
    slices = query.slice_counts(con, min_events) if slo.budgeting_method != "Occurrences" else {}
    results = {
        key: _summarize(slo, period, windows, spans, row, slices.get(key), min_events)
        for key, row in counts.items()
    }
    report = results.get((), _summarize(slo, period, windows, spans, None, None, min_events))
    report["window"] = period.as_dict()
    if group_by:
        report["group_by"] = list(group_by)
        report["groups"] = [
            {"group": dict(zip(group_by, key, strict=True)), **value}
            for key, value in sorted(results.items(), key=lambda kv: tuple(map(str, kv[0])))
            if key != ()
        ]
    return report


class _CountQuery:
    """Builds the scans; the base relation is the filtered requests with their good flag and group keys."""

    def __init__(self, slo, columns, period: Period, filters, filter_params, keys: list[str]):
        self.slo, self.period, self.keys = slo, period, keys
        good, good_params = good_event_sql(slo, columns)
        key_select = "".join(f", {expr} AS g{i}" for i, expr in enumerate(keys))
        self.key_names = [f"g{i}" for i in range(len(keys))]
        self.base_sql = (
            f"SELECT arrival_ts, {good} AS is_good{key_select} FROM request_metrics "
            f"WHERE {filters} AND arrival_ts > ? AND arrival_ts <= ?"
        )
        self.base_params = good_params + filter_params

    def _grouping(self) -> str:
        if not self.key_names:
            return ""
        names = ", ".join(self.key_names)
        return f" GROUP BY GROUPING SETS ((), ({names}))"

    def _key_of(self, row: tuple, is_total: bool) -> tuple:
        return () if is_total else tuple(row[: len(self.key_names)])

    def window_counts(self, con, spans: list[Duration]) -> dict[tuple, dict[str, int]]:
        """Per group: events and bad events of the period and of each span ending at ``at``.

        The spans are nested, so each request gets one class (the shortest span holding it) and the scan
        groups by (in period, class); span counts are then cumulative sums over classes. This evaluates the
        good-event expression once per request instead of once per window.
        """
        period_sql, period_params = self.period.condition()
        cases = " ".join(f"WHEN arrival_ts > ? THEN {index}" for index in range(len(spans)))
        classify = f"CASE {cases} ELSE {len(spans)} END" if spans else "0"
        since = [self.period.at - timedelta(seconds=span.seconds) for span in spans]
        keys = "".join(n + ", " for n in self.key_names)
        grouping = (f"GROUPING SETS ((in_period, cls), ({keys}in_period, cls))" if self.key_names
                    else "in_period, cls")
        total_flag = f"grouping({', '.join(self.key_names)}) <> 0" if self.key_names else "true"
        scan_lower = min(self.period.lower - timedelta(microseconds=1),
                         self.period.at - timedelta(seconds=spans[-1].seconds if spans else 0))
        sql = (
            f"SELECT {keys}{total_flag}, in_period, cls, count(*), count_if(NOT is_good) FROM ("
            f"  SELECT *, ({period_sql}) AS in_period, {classify} AS cls FROM ({self.base_sql})"
            f") AS classified GROUP BY {grouping}"
        )
        params = period_params + since + self.base_params + [scan_lower, self.period.at]
        out: dict[tuple, dict[str, int]] = {}
        offset = len(self.key_names)
        for row in con.execute(sql, params).fetchall():
            key = self._key_of(row, bool(row[offset]))
            in_period, cls, events, bad = row[offset + 1:]
            counts = out.setdefault(key, {"events": 0, "bad_events": 0,
                                          **{f"{w}_{s}": 0 for s in spans for w in ("events", "bad")}})
            if in_period:
                counts["events"] += events
                counts["bad_events"] += bad
            for index, span in enumerate(spans):
                if cls <= index:
                    counts[f"events_{span}"] += events
                    counts[f"bad_{span}"] += bad
        return out

    def slice_counts(self, con, min_events: int) -> dict[tuple, dict[str, Any]]:
        """Per group: slices with data, good slices (share >= timeSliceTarget), mean per-slice good share.

        Slices are aligned to the Unix epoch (whole minutes for 1m slices); a slice with fewer than
        ``min_events`` requests is no-data and counts neither as good nor as bad.
        """
        period_sql, period_params = self.period.condition()
        slice_us = int(self.slo.time_slice_window.seconds * 1_000_000)
        keys = "".join(n + ", " for n in self.key_names)
        inner_sets = f" GROUP BY GROUPING SETS ((slice), ({keys}slice))" if self.key_names else " GROUP BY slice"
        total_flag = f"grouping({', '.join(self.key_names)}) <> 0" if self.key_names else "true"
        target = self.slo.time_slice_target if self.slo.time_slice_target is not None else 1.0
        sql = (
            f"SELECT {keys}is_total, count(*), count(*) FILTER (WHERE good_share >= ?), avg(good_share) FROM ("
            f"  SELECT {keys}{total_flag} AS is_total, "
            f"         count(*) FILTER (WHERE is_good)::DOUBLE / count(*) AS good_share FROM ("
            f"    SELECT *, epoch_us(arrival_ts) // ? AS slice FROM ({self.base_sql}) "
            f"    WHERE {period_sql}) AS sliced{inner_sets} HAVING count(*) >= ?) AS per_slice "
            f"GROUP BY {keys}is_total"
        )
        params = ([target, slice_us] + self.base_params
                  + [self.period.lower - timedelta(microseconds=1), self.period.at] + period_params + [min_events])
        out = {}
        for row in con.execute(sql, params).fetchall():
            offset = len(self.key_names)
            out[self._key_of(row, bool(row[offset]))] = {
                "slices": row[offset + 1], "good_slices": row[offset + 2], "mean_good_share": row[offset + 3],
            }
        return out


def _ratio(bad: int, events: int, min_events: int) -> float | None:
    return bad / events if events >= min_events and events > 0 else None


def _summarize(slo, period: Period, windows: AlertWindows, spans, counts, slices, min_events) -> dict[str, Any]:
    counts = counts or {"events": 0, "bad_events": 0}
    budget = slo.error_budget
    events, bad = int(counts["events"]), int(counts["bad_events"])
    error_ratio = _ratio(bad, events, min_events)
    result: dict[str, Any] = {
        "name": slo.name, "objective": slo.objective, "budgeting_method": slo.budgeting_method,
        "at": period.at.isoformat(), "events": events, "bad_events": bad,
    }
    if slo.budgeting_method != "Occurrences":
        slice_count = int(slices["slices"]) if slices else 0
        if slo.budgeting_method == "Timeslices":
            good_slices = int(slices["good_slices"]) if slices else 0
            error_ratio = (slice_count - good_slices) / slice_count if slice_count else None
            result["bad_slices"] = slice_count - good_slices
        else:
            error_ratio = 1.0 - slices["mean_good_share"] if slice_count else None
        result["slices"] = slice_count
        result["slice_window_s"] = slo.time_slice_window.seconds
        result["error_budget_s"] = budget * period.seconds
    burn = error_ratio / budget if error_ratio is not None and budget > 0 else None
    result.update({
        "sli": None if error_ratio is None else 1.0 - error_ratio,
        "error_ratio": error_ratio,
        "error_budget": budget,
        "budget_consumed": burn,
        "budget_remaining": None if burn is None else 1.0 - burn,
        "burn_rate": burn,
    })
    alerts = []
    for tier in windows.tiers:
        threshold = tier.threshold(windows.period)
        long_burn = _window_burn(counts, tier.long_window, budget, min_events)
        short_burn = _window_burn(counts, tier.short_window, budget, min_events)
        alerts.append({
            "severity": tier.severity, "speed": tier.speed, "budget_percent": tier.budget_percent,
            "long_window": str(tier.long_window), "short_window": str(tier.short_window),
            "threshold": threshold, "long_burn_rate": long_burn, "short_burn_rate": short_burn,
            "firing": long_burn is not None and short_burn is not None
            and long_burn > threshold and short_burn > threshold,
            "can_fire": threshold * budget < 1.0,
        })
    result["alerts"] = alerts
    current = _window_burn(counts, min((t.long_window for t in windows.tiers), key=lambda d: d.seconds),
                           budget, min_events) if windows.tiers else None
    result["current_burn_rate"] = current
    result["time_to_exhaustion_s"] = time_to_exhaustion_s(result["budget_remaining"], current, period.seconds)
    return result


def _window_burn(counts: dict[str, int], span: Duration, budget: float, min_events: int) -> float | None:
    ratio = _ratio(int(counts.get(f"bad_{span}", 0)), int(counts.get(f"events_{span}", 0)), min_events)
    return None if ratio is None or budget <= 0 else ratio / budget


def evaluate_all(con, slos: Sequence[Any], **options) -> list[dict[str, Any]]:
    return [evaluate(con, slo, **options) for slo in slos]
