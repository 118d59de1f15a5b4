"""The evaluation moment and the SLO period it falls in.

Rolling windows cover (at - P, at]; calendar windows cover [period start, at] of the calendar period that
contains ``at``. ``at`` defaults to the latest arrival among the selected requests, so a report on an old
harness run describes that run rather than an empty "now".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from causalsre.errors import UserError
from causalsre.slo.durations import calendar_period
from causalsre.telemetry import first_row


@dataclass(frozen=True, slots=True)
class Period:
    lower: datetime  # exclusive for rolling windows, inclusive for calendar windows
    lower_inclusive: bool
    at: datetime
    seconds: float  # nominal length of the whole period (thresholds and exhaustion use it)
    is_rolling: bool

    def condition(self) -> tuple[str, list[Any]]:
        """SQL (over arrival_ts) selecting the requests of the period so far, with its parameters."""
        operator = ">=" if self.lower_inclusive else ">"
        return f"arrival_ts {operator} ? AND arrival_ts <= ?", [self.lower, self.at]

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.lower.isoformat(), "end": self.at.isoformat(), "rolling": self.is_rolling,
                "duration_s": self.seconds}


def data_span(con: duckdb.DuckDBPyConnection, where_sql: str, where_params: list[Any]) -> tuple[datetime, datetime]:
    """(first, latest) arrival among the selected requests; UserError when none match."""
    if where_sql == "TRUE":
        span = _footer_span(con)
        if span is not None:
            return span
    row = first_row(con.execute(f"SELECT min(arrival_ts), max(arrival_ts) FROM request_metrics WHERE {where_sql}",
                      where_params))
    if row is None or row[1] is None:
        raise UserError("no requests match in request_metrics", "check the database and the filter")
    return row[0], row[1]


def no_match(con: duckdb.DuckDBPyConnection, where: Any, columns: dict) -> UserError:
    """The error for a filter that matches no request: which filter, and (for each filtered column) values the
    data does hold, so `--where tenant=acme` on data of tenants `a, b` says so instead of "check the filter"."""
    from causalsre.slo.sql import check_column, quote

    if not where or not isinstance(where, dict):
        return UserError("no requests match in request_metrics", "check the database and the filter")
    shown = ", ".join(f"{column}={value!r}" for column, value in where.items())
    hints = []
    for column in list(where)[:3]:
        name = quote(check_column(column, dict(columns), what="filter column"))  # validated against the view
        rows = con.execute(f"SELECT DISTINCT {name} FROM request_metrics WHERE {name} IS NOT NULL "
                           f"ORDER BY 1 LIMIT 11").fetchall()
        values = [str(row[0]) for row in rows]
        listed = ", ".join(values[:10]) + (", ..." if len(values) > 10 else "")
        hints.append(f"{column} holds {listed}" if values else f"{column} is empty in every request")
    return UserError(f"no requests match the filter {shown}", "; ".join(hints) or "check the filter")


def period_at(slo: Any, at: datetime) -> Period:
    window = slo.window
    if window.is_rolling:
        return Period(at - timedelta(seconds=window.duration.seconds), False, at, window.duration.seconds, True)
    begin, _ = calendar_period(window.duration, window.calendar_start, window.time_zone, at)
    return Period(begin, True, at, window.duration.seconds, False)


def _footer_span(con: duckdb.DuckDBPyConnection) -> tuple[datetime, datetime] | None:
    """The span a Parquet source read from its footers (:data:`causalsre.slo.source.SPAN_TABLE`), once the rows
    confirm it: the smallest arrival at or below ``first`` must be ``first`` itself, and likewise the largest at
    or above ``last``. Each check reads only the row groups whose statistics reach that instant, so a footer
    that lies (or a writer's rounding) costs a fallback to the full scan, never a wrong answer."""
    from causalsre.slo.source import SPAN_TABLE

    found = first_row(con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
                                  [SPAN_TABLE]))
    if not found or not found[0]:
        return None
    first, last = first_row(con.execute(f"SELECT first_ts, last_ts FROM {SPAN_TABLE}"))
    if first is None or last is None:
        return None
    low = first_row(con.execute("SELECT min(arrival_ts) FROM request_metrics WHERE arrival_ts <= ?", [first]))[0]
    high = first_row(con.execute("SELECT max(arrival_ts) FROM request_metrics WHERE arrival_ts >= ?", [last]))[0]
    return (first, last) if low == first and high == last else None
