"""The columns of the ``request_metrics`` view, the only names an SLO spec or filter may refer to.

Specs are checked against the view as the shipped migrations define it (no database needed), and queries
against the columns of the database actually opened. Every name that reaches SQL passes through here.
"""

from __future__ import annotations

from functools import lru_cache

import duckdb

from causalsre.errors import UserError

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")

# Columns that describe a request's identity or time, not its outcome: a good-event condition on them
# would make the SLO depend on who or when rather than on how the request was served.
NOT_CONDITION_COLUMNS = frozenset({"run_id", "request_id", "attributes", "arrival_ns", "arrival_ts", "phase"})

# Group-by names offered to users -> SQL expression over request_metrics. Fixed strings, never user text.
GROUP_EXPRESSIONS: dict[str, str] = {
    "run": "run_id",
    "tenant": "tenant",
    "priority": "priority",
    "phase": "phase",
    "model": "json_extract_string(attributes, '$.model')",
}


def kind_of(sql_type: str) -> str:
    """'number', 'text', 'bool' or 'other' for a DuckDB type name."""
    upper = sql_type.upper()
    if upper.startswith(NUMERIC_TYPES):
        return "number"
    if upper == "VARCHAR":
        return "text"
    if upper == "BOOLEAN":
        return "bool"
    return "other"


@lru_cache(maxsize=1)
def schema_columns() -> dict[str, str]:
    """Column -> DuckDB type of request_metrics as the shipped migrations define it."""
    from causalsre.telemetry import migrate

    con = duckdb.connect()
    try:
        migrate(con)
        return database_columns(con)
    finally:
        con.close()


def database_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Column -> DuckDB type of request_metrics in an open database."""
    try:
        rows = con.execute("DESCRIBE request_metrics").fetchall()
    except duckdb.Error as exc:
        raise UserError(
            f"the database has no request_metrics view ({str(exc).splitlines()[0]})",
            "open a causalsre telemetry database (causalsre db init / causalsre db import)",
        ) from None
    return {name: str(sql_type) for name, sql_type, *_ in rows}


def check_column(name: str, columns: dict[str, str], *, what: str) -> str:
    """Return ``name`` if it is a column of request_metrics, else raise a UserError listing the choices."""
    if not isinstance(name, str) or name not in columns:
        choices = ", ".join(sorted(columns))
        raise UserError(f"unknown {what} {name!r}", f"use one of the request_metrics columns: {choices}")
    return name


def group_expression(name: str) -> str:
    if name not in GROUP_EXPRESSIONS:
        raise UserError(f"cannot group by {name!r}", f"use one of: {', '.join(GROUP_EXPRESSIONS)}")
    return GROUP_EXPRESSIONS[name]
