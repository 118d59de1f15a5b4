"""Analysis windows: which requests a baseline, an incident or a replay is. One grammar for every command.

A window is written in one of these forms (docs/cli.md "Windows"):

- ``START/END``: ISO 8601 instants in years 1970..2200, end exclusive (``2026-11-28T00:49Z/2026-11-28T00:54Z``);
- ``run:<id>``: every request of one run;
- ``phase:<name>``: a scenario phase in every run that has it, or ``phase:<name>@<run>`` in one run;
- ``+S:+E@<run>``, or the same as ``run:<id>+S:+E``: seconds S (inclusive) to E (exclusive) after the run's t0
  (``runs.started_at``, the clock of every ``*_ns`` column), e.g. ``+10:+40@rate_surge-s0`` or
  ``run:rate_surge-s0+10:+40``;
- ``START/END@<run>``: the instants, within one run.

``@<run>`` always names the run. A command with a ``--run`` option passes it as ``run=``: then ``+S:+E`` and
``phase:<name>`` need no ``@<run>``, every other form is restricted to that run, and an unknown run id is
refused with the known ones. :func:`scope_window` writes such a window as text naming its run, for a command
that hands the text on (what-if replays it). :func:`parse_window` validates the text
against the database once and returns a :class:`Window`: a structured filter (run id, phase, arrival_ts
range) that becomes SQL with bound parameters only, never with user text in the statement. The grammar as
text (the forms, the run a window names, rewriting it) is :mod:`causalsre.window_text`; this module reads the
database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from causalsre.errors import UserError
from causalsre.times import MAX_DURATION_S
from causalsre.telemetry import first_row
from causalsre.window_text import (  # noqa: F401  (FORMS, scope_window, legacy_replay_window: re-exported)
    _NUMBER, _RELATIVE, FORMS, _given_run, _instant, _one_run, _run_form, legacy_replay_window, scope_window,
)

if TYPE_CHECKING:  # a connection is passed in; importing duckdb here would slow every command's --help
    import duckdb

_KNOWN_SHOWN = 10  # run ids an unknown-run error lists


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
        return int(first_row(con.execute(f"SELECT count(*) FROM request_metrics WHERE {sql}", params))[0])

    def runs(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """The runs this window's requests belong to."""
        sql, params = self.where()
        rows = con.execute(f"SELECT DISTINCT run_id FROM request_metrics WHERE {sql} ORDER BY 1", params).fetchall()
        return [r[0] for r in rows]


def parse_window(text: str, con: duckdb.DuckDBPyConnection, *, allow_empty: bool = False,
                 run: str | None = None) -> Window:
    """Parse and validate a window against the database; raises UserError when unknown, reversed or empty.

    ``run`` (a command's ``--run``) is the run of a window that names none; a window naming another run is
    refused rather than silently preferring one of the two.
    """
    text = (text or "").strip()
    if run is not None:  # each form checks the run exists (listing the known ones) where it uses it
        _given_run(run)
    if text.startswith("run:"):
        window = _run_window(text, con, run)
    elif text.startswith("phase:"):
        window = _phase_window(text, con, run)
    elif text.startswith("+"):
        window = _relative_window(text, con, run)
    elif "/" in text:
        window = _time_window(text, con, run)
    else:
        raise UserError(f"window {text[:100]!r} is not understood", f"write it as {FORMS}")
    if not allow_empty and window.count(con) == 0:
        if window.run_id is not None and _only_metric_samples(con, window.run_id):
            raise UserError(f"window {text[:100]!r} holds no requests: run {window.run_id!r} has only metric "
                            "samples (scrapes imported without a bench file)",
                            "import the same run's `vllm bench serve --save-result --save-detailed` JSON with "
                            "`causalsre db import vllm-bench`; its import note gives the histograms' quantiles")
        raise UserError(f"window {text[:100]!r} holds no requests", "check the run, phase or time range")
    return window


def _only_metric_samples(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether a run has scraped metric samples but no request rows (a scrapes-only import)."""
    import duckdb  # only on this error path (see the TYPE_CHECKING import above)
    try:
        samples = first_row(con.execute("SELECT count(*) FROM metric_samples WHERE run_id = ?", [run_id]))[0]
    except duckdb.Error:  # a database from before migration 0003 has no metric_samples
        return False
    requests = first_row(con.execute("SELECT count(*) FROM requests WHERE run_id = ?", [run_id]))[0]
    return int(samples) > 0 and int(requests) == 0


def check_run(con: duckdb.DuckDBPyConnection, run_id: str, what: str = "--run") -> None:
    """Refuse a run id the database does not hold, listing the ones it does (the first few)."""
    if first_row(con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]))[0]:
        return
    total = first_row(con.execute("SELECT count(*) FROM runs"))[0]
    rows = con.execute("SELECT run_id FROM runs ORDER BY run_id LIMIT ?", [_KNOWN_SHOWN]).fetchall()
    known = [r[0][:60] for r in rows]
    shown = ", ".join(known) + (f", ... ({total} runs in all; `causalsre db info --db FILE` lists them)"
                                if total > len(known) else "")
    raise UserError(f"{what}: run {run_id[:100]!r} is not in the database", f"known runs: {shown or 'none'}")


def _check_run(text: str, run_id: str, con: duckdb.DuckDBPyConnection) -> None:
    check_run(con, run_id, f"window {text[:100]!r}")


def _run_window(text: str, con: duckdb.DuckDBPyConnection, run: str | None) -> Window:
    named, offsets = _run_form(text)
    run_id = _one_run(text, named or None, run)
    if not run_id:
        raise UserError(f"window {text[:100]!r} names no run",
                        "write run:<id> or run:<id>+S:+E; `causalsre db info --db FILE` lists the runs")
    if offsets is not None:
        return _offset_window(text, con, run_id, *offsets)
    _check_run(text, run_id, con)
    return Window(label=text, run_id=run_id)


def _phase_window(text: str, con: duckdb.DuckDBPyConnection, run: str | None) -> Window:
    body = text[len("phase:"):]
    name, at, named = body.partition("@")
    if not name:
        raise UserError(f"window {text[:100]!r} names no phase", "write phase:<name>, e.g. phase:incident")
    if at and not named:
        raise UserError(f"window {text[:100]!r} names no run after @", "write phase:<name>@<run>, or drop the @")
    run_id = _one_run(text, named or None, run)
    sql, params = "SELECT count(*) FROM phases WHERE name = ?", [name]
    if run_id:
        _check_run(text, run_id, con)
        sql, params = sql + " AND run_id = ?", params + [run_id]
    if not first_row(con.execute(sql, params))[0]:
        known = [r[0] for r in con.execute("SELECT DISTINCT name FROM phases ORDER BY name").fetchall()]
        raise UserError(f"window {text[:100]!r}: no such phase in the database",
                        f"known phases: {', '.join(known) or 'none'}")
    return Window(label=text, phase=name, run_id=run_id or None)


def _relative_window(text: str, con: duckdb.DuckDBPyConnection, run: str | None) -> Window:
    match = _RELATIVE.match(text)
    if match is None:
        raise UserError(f"window {text[:100]!r} is not +S:+E@<run>",
                        "write seconds after the run's t0, e.g. +10:+40@RUN (or +10:+40 with --run)")
    run_id = _one_run(text, match["run"], run)
    if not run_id:
        raise UserError(f"window {text[:100]!r} names no run",
                        "relative seconds are within one run: write +S:+E@RUN (or run:RUN+S:+E), or give --run")
    return _offset_window(text, con, run_id, match["start"], match["end"])


def _offset_window(text: str, con: duckdb.DuckDBPyConnection, run_id: str, start: str, end: str) -> Window:
    """Seconds ``start`` (inclusive) to ``end`` (exclusive) after ``run_id``'s t0, both still text."""
    if not (_NUMBER.match(start) and _NUMBER.match(end)):
        raise UserError(f"window {text[:100]!r} is not run:<id>+S:+E",
                        "write seconds after the run's t0 as non-negative numbers, e.g. run:RUN+10:+40")
    start_s, end_s = float(start), float(end)
    if not (math.isfinite(end_s) and end_s <= MAX_DURATION_S):
        raise UserError(f"window {text[:100]!r} ends too far after the run's t0", "give at most 100 years of seconds")
    if end_s == start_s:
        raise UserError(f"window {text[:100]!r} is empty: start equals end",
                        "give an end offset after the start: +S:+E holds the requests from S up to (not at) E")
    if end_s < start_s:
        raise UserError(f"window {text[:100]!r} ends before it starts", "put the earlier offset first: +S:+E")
    _check_run(text, run_id, con)
    t0 = first_row(con.execute("SELECT started_at FROM runs WHERE run_id = ?", [run_id]))[0]
    return Window(label=text, run_id=run_id, start=t0 + timedelta(seconds=start_s), end=t0 + timedelta(seconds=end_s))


def _time_window(text: str, con: duckdb.DuckDBPyConnection, run: str | None) -> Window:
    instants, at, named = text.partition("@")  # an ISO instant holds no '@'
    if at and not named:
        raise UserError(f"window {text[:100]!r} names no run after @", "write START/END@<run>, or drop the @")
    run_id = _one_run(text, named or None, run)
    start_text, _, end_text = instants.partition("/")
    start, end = _instant(start_text, text), _instant(end_text, text)
    if end == start:
        raise UserError(f"window {text[:100]!r} is empty: start equals end",
                        "give an END after START: START/END holds the requests from START up to (not at) END")
    if end < start:
        raise UserError(f"window {text[:100]!r} ends before it starts", "put the earlier instant first: START/END")
    if run_id is not None:
        _check_run(text, run_id, con)
    return Window(label=text, run_id=run_id, start=start, end=end)


def run_offsets(window: Window, con: duckdb.DuckDBPyConnection) -> tuple[str, str | None, float, float]:
    """``(run_id, phase, start_s, end_s)`` of a window inside one run, seconds after the run's t0.

    What a replay needs: ``harness replay`` takes any window form and replays one run's part of it. A window
    spanning several runs is refused with the runs it spans.
    """
    runs = [window.run_id] if window.run_id is not None else window.runs(con)
    if len(runs) != 1:
        shown = ", ".join(runs[:5]) + (", ..." if len(runs) > 5 else "")
        raise UserError(f"window {window.label[:100]!r} spans {len(runs)} runs ({shown})",
                        "name one: add @RUN to the window, or give --run")
    run_id = runs[0]
    t0, last_ns = first_row(con.execute(
        "SELECT ru.started_at, max(COALESCE(r.scheduled_arrival_ns, r.enqueue_ns)) FROM runs ru "
        "LEFT JOIN requests r ON r.run_id = ru.run_id WHERE ru.run_id = ? GROUP BY ru.started_at", [run_id]))
    start_s = 0.0 if window.start is None else max((window.start - t0).total_seconds(), 0.0)
    # A whole run ends one second after its last arrival (end exclusive).
    end_s = (math.floor((last_ns or 0) / 1e9) + 1.0) if window.end is None else (window.end - t0).total_seconds()
    if end_s <= start_s:
        raise UserError(f"window {window.label[:100]!r} holds none of run {run_id}'s time", "check the time range")
    return run_id, window.phase, start_s, end_s


def check_disjoint(first: Window, second: Window, con: duckdb.DuckDBPyConnection) -> None:
    """Raise when two windows share requests (a baseline must not overlap its incident)."""
    a_sql, a_params = first.where()
    b_sql, b_params = second.where()
    shared = first_row(con.execute(
        f"SELECT count(*) FROM request_metrics WHERE ({a_sql}) AND ({b_sql})", a_params + b_params
    ))[0]
    if shared:
        raise UserError(f"windows {first.label!r} and {second.label!r} overlap ({shared} requests in both)",
                        "choose a baseline that does not contain the incident")
