"""Trailing-window aggregates of the analysis table: arrivals, mean prompt and output lengths in [t - window, t].

A request's trailing arrival rate counts every request of its run that arrived in the window before it, not
only the requests of the analysis window or of its subsample, so the totals run over the whole run (10.5M
requests in a fleet-sized postmortem) while they are needed at two instants per analysed request only: t and
t - window - 1 (the last nanosecond before the window). The run's requests are streamed through once in Arrow
batches; each one is counted at the first of those instants at or after its arrival (a binary search in the
sorted instants), and running sums over the instants give every total as a difference of two of them. Memory
is O(instants + batch), CPU one binary search per request. The values are the exact integer counts and sums
of the window-function definition (``count/sum(...) OVER (PARTITION BY run_id ORDER BY arrival RANGE ...)``,
ties at t included), so the table is what that SQL gave, at a tenth of its CPU and a fifteenth of its memory.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

# Rows per streamed batch. At most 2**21, so that a batch's float64 bincount of INTEGER token counts (< 2**31
# each) stays below 2**53 and is exact; the batch totals are then added as int64.
BATCH_ROWS = 1 << 20

_STREAM_SQL = (
    "SELECT k.code, COALESCE(q.scheduled_arrival_ns, q.enqueue_ns) AS a, q.prompt_tokens AS p, "
    "COALESCE(q.target_output_tokens, q.output_tokens) AS o "
    "FROM requests q JOIN _trailing_runs k ON q.run_id = k.run_id"
)


class _RunTotals:
    """Counts and sums of one run's requests, bucketed at the first cut at or after each arrival."""

    def __init__(self, cuts: np.ndarray):
        self.cuts = cuts
        size = len(cuts) + 1  # the last slot takes arrivals after every cut (never read)
        self.n, self.n_p, self.s_p = (np.zeros(size, np.int64) for _ in range(3))
        self.n_o, self.s_o = np.zeros(size, np.int64), np.zeros(size, np.int64)
        self.first_ns: int | None = None
        # Requests with no arrival instant sort after every other in the window-function definition, so a
        # request with none sees the whole run: its totals are every request's.
        self.all = np.zeros(5, np.int64)

    def add(self, a: np.ndarray, a_ok: np.ndarray, p: np.ndarray, p_ok: np.ndarray, o: np.ndarray,
            o_ok: np.ndarray) -> None:
        self.all += [len(a), p_ok.sum(), p[p_ok].sum(dtype=np.int64), o_ok.sum(), o[o_ok].sum(dtype=np.int64)]
        a, p, p_ok, o, o_ok = a[a_ok], p[a_ok], p_ok[a_ok], o[a_ok], o_ok[a_ok]
        if not len(a):
            return
        low = int(a.min())
        self.first_ns = low if self.first_ns is None else min(self.first_ns, low)
        at = np.searchsorted(self.cuts, a, side="left")
        size = len(self.n)
        self.n += np.bincount(at, minlength=size)
        for count, total, values, ok in ((self.n_p, self.s_p, p, p_ok), (self.n_o, self.s_o, o, o_ok)):
            count += np.bincount(at[ok], minlength=size) if not ok.all() else np.bincount(at, minlength=size)
            total += np.bincount(at, weights=np.where(ok, values, 0), minlength=size).astype(np.int64)


def trailing_aggregates(con: duckdb.DuckDBPyConnection, run_id: pd.Series, arrival_ns: pd.Series,
                        window_ns: int) -> pd.DataFrame:
    """``n_recent``, ``since_first_ns``, ``recent_prompt_tokens``, ``recent_output_tokens`` for each (run_id,
    arrival_ns) row, in the rows' order: arrivals of the run in [t - window_ns, t], their mean prompt and
    output lengths (requests without one left out; NaN when none has one), and t minus the run's first arrival."""
    runs = pd.unique(run_id.to_numpy(dtype=object))
    codes = pd.Index(runs).get_indexer(run_id.to_numpy(dtype=object))
    has_t = arrival_ns.notna().to_numpy()
    # int64 as DuckDB returns BIGINT; a column with NULLs comes back as float64 (exact below 2**53 ns)
    t = np.where(has_t, arrival_ns.fillna(0).to_numpy(), 0).astype(np.int64)
    groups = _groups(codes, len(runs))
    totals = []
    for rows in groups:
        mine = t[rows[has_t[rows]]]
        totals.append(_RunTotals(np.unique(np.concatenate([mine, mine - window_ns - 1]))))
    con.register("_trailing_runs", pd.DataFrame({"run_id": runs, "code": np.arange(len(runs), dtype=np.int32)}))
    try:
        for batch in _reader(con.sql(_STREAM_SQL)):
            _add_batch(totals, batch)
    finally:
        con.unregister("_trailing_runs")
    return _lookup(totals, groups, codes, t, has_t, window_ns)


def _groups(codes: np.ndarray, count: int) -> list[np.ndarray]:
    """The row indices of each code 0..count-1 (one stable sort, not a scan per code)."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(count + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(count)]


def _reader(relation):
    """A streaming Arrow reader over a relation (DuckDB 2 renamed record_batch to to_arrow_reader)."""
    if hasattr(relation, "to_arrow_reader"):
        return relation.to_arrow_reader(BATCH_ROWS)
    return relation.record_batch(BATCH_ROWS)


def _column(batch, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(values with nulls as 0, is-valid mask) of one integer column of an Arrow batch."""
    column = batch.column(index)
    if column.null_count == 0:
        return column.to_numpy(), np.ones(len(column), dtype=bool)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return column.fill_null(0).to_numpy(), valid


def _add_batch(totals: list[_RunTotals], batch) -> None:
    code = batch.column(0).to_numpy()
    columns = [_column(batch, i) for i in (1, 2, 3)]
    if len(totals) == 1:
        totals[0].add(*(part for pair in columns for part in pair))
        return
    for run, rows in zip(totals, _groups(code, len(totals)), strict=True):
        if len(rows):
            run.add(*(part[rows] for pair in columns for part in pair))


def _lookup(totals: list[_RunTotals], groups: list[np.ndarray], codes: np.ndarray, t: np.ndarray,
            has_t: np.ndarray, window_ns: int) -> pd.DataFrame:
    size = len(t)
    n, n_p, s_p, n_o, s_o = (np.zeros(size, np.int64) for _ in range(5))
    since = np.full(size, np.nan)
    for run, group in zip(totals, groups, strict=True):
        rows, blank = group[has_t[group]], group[~has_t[group]]
        if len(rows):
            upto = np.searchsorted(run.cuts, t[rows])
            before = np.searchsorted(run.cuts, t[rows] - window_ns - 1)
            for out, counts in ((n, run.n), (n_p, run.n_p), (s_p, run.s_p), (n_o, run.n_o), (s_o, run.s_o)):
                running = np.cumsum(counts)
                out[rows] = running[upto] - running[before]
            since[rows] = (t[rows] - run.first_ns).astype(np.float64)
        for out, value in zip((n, n_p, s_p, n_o, s_o), run.all, strict=True):
            out[blank] = value
    frame = pd.DataFrame({"n_recent": n, "since_first_ns": since,
                          "recent_prompt_tokens": s_p / np.where(n_p == 0, np.nan, n_p),
                          "recent_output_tokens": s_o / np.where(n_o == 0, np.nan, n_o)})
    if has_t.all() and size:  # integer nanoseconds, as the SQL gave them
        first = np.array([run.first_ns if run.first_ns is not None else 0 for run in totals], dtype=np.int64)
        frame["since_first_ns"] = t - first[codes]
    return frame
