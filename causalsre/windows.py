"""Analysis windows: which requests a baseline or incident is.

A window is written ``START/END`` (ISO 8601 instants in years 1970..2200, end exclusive), ``run:<id>``, ``phase:<name>`` (a
scenario phase in every run that has it) or ``phase:<name>@<run_id>``. :func:`parse_window` validates it
against the database and returns a :class:`Window`: a structured filter (run id, phase, arrival_ts range)
that becomes SQL with bound parameters only, never with user text in the statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from causalsre.errors import UserError
from causalsre.times import parse_instant

_FORMS = "START/END (ISO 8601), run:<id>, phase:<name> or phase:<name>@<run_id>"


@dataclass(frozen=True, slots=True)
class Window:
    """A set of requests in ``request_metrics``, selected by run, phase and/or arrival time."""

    label: str
    run_id: str | None = None
    phase: str | None = None
    start: datetime | None = None  # inclusive, naive UTC (request_metrics.arrival_ts is naive UTC)
    end: datetime | None = None  # exclusive

    def where(self, alias: str = "") -> tuple[str, list]:
        """``(sql_condition, params)`` over request_metrics columns; ``alias`` prefixes the column names."""
        prefix = f"{alias}." if alias else ""
        clauses, params = [], []
        if self.run_id is not None:
            clauses.append(f"{prefix}run_id = ?")
            params.append(self.run_id)
        if self.phase is not None:
            clauses.append(f"{prefix}phase = ?")
            params.append(self.phase)
        if self.start is not None:
            clauses.append(f"{prefix}arrival_ts >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append(f"{prefix}arrival_ts < ?")
            params.append(self.end)
        return (" AND ".join(clauses) or "TRUE"), params

    def as_filter(self) -> dict:
        """The equality part as a column -> value dict (the SLO package's ``where`` argument)."""
        return {k: v for k, v in (("run_id", self.run_id), ("phase", self.phase)) if v is not None}

    def count(self, con: duckdb.DuckDBPyConnection) -> int:
        sql, params = self.where()
        return int(con.execute(f"SELECT count(*) FROM request_metrics WHERE {sql}", params).fetchone()[0])


def parse_window(text: str, con: duckdb.DuckDBPyConnection, *, allow_empty: bool = False) -> Window:
    """Parse and validate a window against the database; raises UserError when unknown, reversed or empty."""
    text = (text or "").strip()
    if text.startswith("run:"):
        window = _run_window(text, con)
    elif text.startswith("phase:"):
        window = _phase_window(text, con)
    elif "/" in text:
        window = _time_window(text)
    else:
        raise UserError(f"window {text!r} is not understood", f"write it as {_FORMS}")
    if not allow_empty and window.count(con) == 0:
        raise UserError(f"window {text!r} holds no requests", "check the run, phase or time range")
    return window


def _run_window(text: str, con: duckdb.DuckDBPyConnection) -> Window:
    run_id = text[len("run:"):]
    if not run_id:
        raise UserError(f"window {text!r} names no run", "write run:<id>; `causalsre db info PATH` lists the runs")
    if not con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]:
        raise UserError(f"window {text!r}: run {run_id!r} is not in the database", "check the run id")
    return Window(label=text, run_id=run_id)


def _phase_window(text: str, con: duckdb.DuckDBPyConnection) -> Window:
    body = text[len("phase:"):]
    name, _, run_id = body.partition("@")
    if not name:
        raise UserError(f"window {text!r} names no phase", "write phase:<name>, e.g. phase:incident")
    sql, params = "SELECT count(*) FROM phases WHERE name = ?", [name]
    if run_id:
        sql, params = sql + " AND run_id = ?", params + [run_id]
    if not con.execute(sql, params).fetchone()[0]:
        known = [r[0] for r in con.execute("SELECT DISTINCT name FROM phases ORDER BY name").fetchall()]
        raise UserError(f"window {text!r}: no such phase in the database",
                        f"known phases: {', '.join(known) or 'none'}")
    return Window(label=text, phase=name, run_id=run_id or None)


def _time_window(text: str) -> Window:
    start_text, _, end_text = text.partition("/")
    start, end = _instant(start_text, text), _instant(end_text, text)
    if end <= start:
        raise UserError(f"window {text!r} ends before it starts", "put the earlier instant first: START/END")
    return Window(label=text, start=start, end=end)


def _instant(value: str, text: str) -> datetime:
    """One end of START/END as naive UTC, through the one time parser (years 1970..2200)."""
    return parse_instant(value, what=f"window {text[:100]!r}:")


def check_disjoint(first: Window, second: Window, con: duckdb.DuckDBPyConnection) -> None:
    """Raise when two windows share requests (a baseline must not overlap its incident)."""
    a_sql, a_params = first.where()
    b_sql, b_params = second.where()
    shared = con.execute(
        f"SELECT count(*) FROM request_metrics WHERE ({a_sql}) AND ({b_sql})", a_params + b_params
    ).fetchone()[0]
    if shared:
        raise UserError(f"windows {first.label!r} and {second.label!r} overlap ({shared} requests in both)",
                        "choose a baseline that does not contain the incident")
