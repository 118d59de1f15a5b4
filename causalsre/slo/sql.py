"""SQL over ``request_metrics``: the good-event expression, structured filters, and per-request outcomes.

Names are checked against the view's columns and double-quoted; every value is a bound ``?`` parameter.
A condition on a metric that is NULL for an ``ok`` request (TPOT of a one-token reply) does not apply to
that request, so it holds; a request that did not finish ``ok`` is bad whatever its metrics.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from causalsre.errors import UserError
from causalsre.slo.columns import check_column, database_columns, kind_of, schema_columns
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
    """A structured filter {column: value | [values] | None} -> (SQL, params); "TRUE" when empty.

    Each value is checked against its column's type (:func:`filter_value`) before it is bound, so a value
    DuckDB could not compare (``{"tenant": 3}``) is a UserError here, not a conversion error mid-query."""
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
            params.extend(filter_value(column, columns[column], one) for one in value)
        else:
            parts.append(f"{name} = ?")
            params.append(filter_value(column, columns[column], value))
    return (" AND ".join(parts) or "TRUE"), params


MISFIT = "a where value does not fit its column's type"  # the API's wording for the same mistake
_INT_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64, "HUGEINT": 128}


def filter_value(column: str, sql_type: str, value: Any) -> Any:
    """``value`` as a parameter for ``column = ?``: text for text columns, a finite number for numeric ones
    (a whole number in range for integer columns), True/False for booleans, an instant for timestamps.
    Anything else is refused rather than cast: DuckDB would cast the *column* to the value's type
    (``tenant = 3`` reads every tenant as an integer) and fail on the first row, or match by accident."""
    kind, upper = kind_of(sql_type), sql_type.upper()
    shown = repr(value)[:60]
    if kind == "text":
        if isinstance(value, str):
            return value
        raise UserError(f"{MISFIT} ({column} is text, not {shown})", f"give text, e.g. {{{column!r}: 'a'}}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise UserError(f"{MISFIT} ({column} is true or false, not {shown})", f"give True or False for {column}")
    if upper == "TIMESTAMP":
        if isinstance(value, (str, datetime)):
            return parse_time(value, what=f"filter {column}")
        raise UserError(f"{MISFIT} ({column} is a time, not {shown})", "give an ISO 8601 time or a datetime")
    if kind != "number":
        raise UserError(f"cannot filter on {column} ({sql_type})", "filter on a text, number, boolean or time column")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # numpy integers too
    elif isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        value = float(value)
    else:
        raise UserError(f"{MISFIT} ({column} needs a finite number, not {shown})", f"give a number, e.g. {{{column!r}: 0}}")
    bits = next((b for name, b in _INT_BITS.items() if upper.startswith(name)), None)
    if bits is None:
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise UserError(f"{MISFIT} ({column}, {sql_type}, needs a whole number, not {shown})",
                            f"give a whole number, e.g. {{{column!r}: 0}}")
        value = int(value)
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise UserError(f"{MISFIT} ({column}: {shown} is outside {sql_type})",
                        f"give a whole number between {-(2 ** (bits - 1))} and {2 ** (bits - 1) - 1}")
    return value


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
