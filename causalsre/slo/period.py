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
    row = first_row(con.execute(f"SELECT min(arrival_ts), max(arrival_ts) FROM request_metrics WHERE {where_sql}",
                      where_params))
    if row is None or row[1] is None:
        raise UserError("no requests match in request_metrics", "check the database and the filter")
    return row[0], row[1]


def period_at(slo: Any, at: datetime) -> Period:
    window = slo.window
    if window.is_rolling:
        return Period(at - timedelta(seconds=window.duration.seconds), False, at, window.duration.seconds, True)
    begin, _ = calendar_period(window.duration, window.calendar_start, window.time_zone, at)
    return Period(begin, True, at, window.duration.seconds, False)
