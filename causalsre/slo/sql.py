"""SQL over ``request_metrics``: the good-event expression, structured filters, and per-request outcomes.

Names are checked against the view's columns and double-quoted; every value is a bound ``?`` parameter.
A condition on a metric that is NULL for an ``ok`` request (TPOT of a one-token reply) does not apply to
that request, so it holds; a request that did not finish ``ok`` is bad whatever its metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from causalsre.errors import UserError
from causalsre.slo.columns import check_column, database_columns, schema_columns
from causalsre.slo.durations import parse_time


def quote(column: str) -> str:
    """Quote a column name that has already been checked against the view."""
    return '"' + column.replace('"', '""') + '"'


def good_event_sql(slo: Any, columns: Mapping[str, str] | None = None) -> tuple[str, list[Any]]:
    """(boolean SQL expression over request_metrics, bound parameters) for "this request is a good event".

    ``slo`` is an :class:`~causalsre.slo.spec.SLOSpec` (or anything with ``.conditions``). ``columns`` are
    the view's columns to check against (default: the shipped schema).
    """
    from causalsre.slo.spec import validate_condition

    columns = dict(columns) if columns is not None else schema_columns()
    parts = ["COALESCE(is_ok, false)"]
    params: list[Any] = []
    for condition in slo.conditions:
        validate_condition(condition, columns, f"SLO {getattr(slo, 'name', '?')}")
        column = quote(condition.metric)
        parts.append(f"({column} IS NULL OR {column} {condition.sql_operator} ?)")
        params.append(condition.value)
    return "(" + " AND ".join(parts) + ")", params


def where_sql(where: Mapping[str, Any] | None, columns: Mapping[str, str]) -> tuple[str, list[Any]]:
    """A structured filter {column: value | [values] | None} -> (SQL, params); "TRUE" when empty."""
    if where is None:
        return "TRUE", []
    if not isinstance(where, Mapping):
        raise UserError(f"filter {where!r} is not a mapping of column to value", "pass e.g. {'tenant': 'a'}")
    parts: list[str] = []
    params: list[Any] = []
    for column, value in where.items():
        name = quote(check_column(column, dict(columns), what="filter column"))
        if value is None:
            parts.append(f"{name} IS NULL")
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            if not value:
                raise UserError(f"filter on {column} lists no values", "give at least one value")
            parts.append(f"{name} IN ({', '.join('?' for _ in value)})")
            params.extend(value)
        else:
            parts.append(f"{name} = ?")
            params.append(value)
    return (" AND ".join(parts) or "TRUE"), params


def request_outcomes(
    con: duckdb.DuckDBPyConnection,
    slo: Any,
    where: Mapping[str, Any] | None = None,
    *,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
) -> pd.DataFrame:
    """One row per request in request_metrics: run_id, request_id, arrival_ts, phase, is_good, is_bad.

    ``where`` is a structured filter (column -> value, a list of values, or None for IS NULL); ``start``
    and ``end`` optionally bound arrival_ts as [start, end).
    """
    columns = database_columns(con)
    good, good_params = good_event_sql(slo, columns)
    filters, filter_params = where_sql(where, columns)
    bounds, bound_params = time_bounds_sql(start, end)
    sql = (
        f"SELECT run_id, request_id, arrival_ts, phase, {good} AS is_good, NOT {good} AS is_bad "
        f"FROM request_metrics WHERE {filters} AND {bounds} ORDER BY arrival_ts, run_id, request_id"
    )
    return con.execute(sql, good_params + good_params + filter_params + bound_params).df()


def time_bounds_sql(start: str | datetime | None, end: str | datetime | None) -> tuple[str, list[Any]]:
    parts, params = [], []
    if start is not None:
        parts.append("arrival_ts >= ?")
        params.append(parse_time(start, what="start"))
    if end is not None:
        parts.append("arrival_ts < ?")
        params.append(parse_time(end, what="end"))
    return (" AND ".join(parts) or "TRUE"), params
