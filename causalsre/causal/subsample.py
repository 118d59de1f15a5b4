"""Stratified subsampling of the postmortem's windows, before the per-request analysis table is built.

A window of a fleet holds millions of requests; the analysis table (ASOF joins on steps, settings, SLO flags)
and the models need a few hundred thousand at most. When a window holds more than ``cap`` requests, each
window keeps the same fraction ``f = cap / (requests of the larger window)`` of every stratum (window x tenant x
good/bad), so the shares of tenants and of bad events, and the ratio of the two windows' arrival rates, are
those of the full data (each stratum's quota is rounded by largest remainder; every non-empty stratum keeps at
least one row). Each kept request stands for ``weight = stratum requests / stratum rows`` requests, about
``1 / f`` everywhere, so the unweighted models downstream see the full data's proportions. Which requests are
kept is decided by a seeded hash of (run_id, request_id), so a rerun keeps the same ones. Counts and burn rates
in the report use every request (from the strata counts), never the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from causalsre.windows import Window

# The hash threshold of _keys: the quota plus this many standard deviations plus these rows (tests shrink it).
MARGIN_SD, MARGIN_ROWS = 6.0, 10
CAP = 200_000  # rows per window at most; the models themselves use at most 10k (postmortem._subsample)
METHOD = ("stratified by window x tenant x good/bad, the same fraction in both windows, quotas by largest "
          "remainder, rows chosen by a seeded hash of (run_id, request_id)")


@dataclass
class WindowSample:
    """The kept (run_id, request_id) keys of one window and its strata (requests, rows, weight)."""

    keys: pd.DataFrame
    strata: pd.DataFrame

    @property
    def requests(self) -> int:
        return int(self.strata["requests"].sum())

    @property
    def bad_events(self) -> int:
        return int(self.strata.loc[self.strata["is_bad"], "requests"].sum())


@dataclass
class SamplePlan:
    fraction: float
    cap: int
    windows: dict[str, WindowSample]

    def keys(self, name: str) -> pd.DataFrame:
        return self.windows[name].keys

    def report(self, burn_counts, objective: float | None) -> dict:
        """Entries of the postmortem result: counts and burn of every request, and what the sample was."""
        out = {f"n_{name}": s.requests for name, s in self.windows.items()}
        out["burn"] = {name: burn_counts(s.requests, s.bad_events, objective) for name, s in self.windows.items()}
        out["subsample"] = self.describe()
        return out

    def describe(self) -> dict:
        """The report's ``subsample`` entry: what was done and how many rows each window used."""
        out = {"method": METHOD, "cap": self.cap, "fraction": self.fraction}
        for name, sample in self.windows.items():
            strata = sample.strata.assign(tenant=sample.strata["tenant"].astype(object).where(
                sample.strata["tenant"].notna(), None))
            out[name] = {"requests": sample.requests, "rows_used": int(len(sample.keys)),
                         "strata": [{"tenant": r.tenant, "is_bad": bool(r.is_bad), "requests": int(r.requests),
                                     "rows": int(r.rows), "weight": round(float(r.weight), 4)}
                                    for r in strata.itertuples(index=False)]}
        return out


def bad_event_sql(con: duckdb.DuckDBPyConnection, slo) -> tuple[str, list]:
    """Bad-event SQL over request_metrics: the SLO's rule, or "did not complete" without one (as the table)."""
    if slo is None:
        return "NOT COALESCE(is_ok, false)", []
    from causalsre.slo import good_event_sql
    from causalsre.slo.columns import database_columns

    good, params = good_event_sql(slo, database_columns(con))
    return "NOT " + good, params


def _strata(con, window: Window, bad: str, bad_params: list) -> pd.DataFrame:
    condition, params = window.where()
    sql = (f"SELECT tenant, {bad} AS is_bad, count(*) AS requests FROM request_metrics WHERE {condition} "
           "GROUP BY ALL ORDER BY tenant NULLS FIRST, is_bad")
    return con.execute(sql, bad_params + params).df()


def quotas(requests: np.ndarray, fraction: float) -> np.ndarray:
    """Rows per stratum: ``fraction`` of each, rounded by largest remainder, at least one per non-empty one."""
    exact = requests * fraction
    rows = np.floor(exact).astype(np.int64)
    short = int(round(exact.sum())) - int(rows.sum())
    if short > 0:
        rows[np.argsort(-(exact - rows), kind="stable")[:short]] += 1
    return np.minimum(np.maximum(rows, (requests > 0).astype(np.int64)), requests)


def _keys(con, window: Window, bad: str, bad_params: list, strata: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The kept keys: in each stratum, the ``rows`` requests first in (seeded hash, run_id, request_id) order.

    Only the requests whose hash falls below a per-stratum threshold are ranked: the threshold holds the quota
    plus six standard deviations and ten rows of the hash's uniform spread, so the window function sorts about
    the quota rather than the whole stratum (5M requests a window at 10M). Every stratum returns at most its
    quota; when the total falls short, some stratum had fewer candidates than its quota and the ranking reruns
    over every request. Either way the kept requests are the same."""
    condition, params = window.where()
    quotas = strata[["tenant", "is_bad", "rows"]].copy()
    rows = quotas["rows"].to_numpy(np.float64)
    share = (rows + MARGIN_SD * np.sqrt(rows) + MARGIN_ROWS) / np.maximum(strata["requests"].to_numpy(np.float64), 1.0)
    everything = np.iinfo(np.uint64).max
    quotas["threshold"] = np.floor(np.clip(share, 0.0, 0.5) * 2.0**64).astype(np.uint64)
    quotas.loc[share >= 0.5, "threshold"] = everything  # a large share: rank the whole stratum
    sql = ("SELECT run_id, request_id FROM (SELECT s.run_id, s.request_id, q.rows, row_number() OVER "
           "(PARTITION BY s.tenant, s.is_bad ORDER BY s.h, s.run_id, s.request_id) AS k "
           "FROM (SELECT run_id, request_id, tenant, is_bad, hash(run_id, request_id, ?::BIGINT) AS h "
           f"      FROM (SELECT run_id, request_id, tenant, {bad} AS is_bad FROM request_metrics WHERE {condition})) s "
           "JOIN _subsample_quotas q ON s.tenant IS NOT DISTINCT FROM q.tenant AND s.is_bad = q.is_bad "
           "WHERE s.h <= q.threshold) t WHERE k <= rows ORDER BY run_id, request_id")
    for attempt in ("candidates", "every request"):
        if attempt == "every request":
            quotas["threshold"] = everything
        con.register("_subsample_quotas", quotas)
        try:
            keys = con.execute(sql, [seed] + bad_params + params).df()
        finally:
            con.unregister("_subsample_quotas")
        if len(keys) == int(quotas["rows"].sum()):
            break
    return keys


def plan_subsample(con: duckdb.DuckDBPyConnection, slo, windows: dict[str, Window], cap: int | None = None,
                   seed: int = 0) -> SamplePlan | None:
    """The kept keys of each window, or None when every window holds at most ``cap`` requests (default
    :data:`CAP`, read at call time; 0 switches subsampling off)."""
    cap = CAP if cap is None else cap
    if not cap:
        return None
    bad, bad_params = bad_event_sql(con, slo)
    strata = {name: _strata(con, window, bad, bad_params) for name, window in windows.items()}
    largest = max(int(s["requests"].sum()) for s in strata.values())
    if largest <= cap:
        return None
    fraction = cap / largest
    samples = {}
    for name, window in windows.items():
        table = strata[name]
        table["rows"] = quotas(table["requests"].to_numpy(np.int64), fraction)
        table["weight"] = table["requests"] / table["rows"].where(table["rows"] > 0)
        samples[name] = WindowSample(_keys(con, window, bad, bad_params, table, seed), table)
    return SamplePlan(fraction=fraction, cap=cap, windows=samples)
