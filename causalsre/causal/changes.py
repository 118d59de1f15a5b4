"""What changed between the baseline and the incident: the first section of every postmortem.

Three kinds of change, each with its size and, for the workload, a test of significance:

* **settings** recorded by the producer (``run_settings``: knobs, hardware faults, the offered load), with the
  time each new value took effect;
* **operator events** (``operator_events``: deploys, config pushes, scale events, from the harness or
  ``causalsre db import events``) between the baseline's start and the incident's end;
* **workload shifts** measured from the requests themselves (works for imported telemetry too): the arrival
  rate (Poisson rate test), the prompt and output lengths (two-sample KS), the tenant mix (chi-square) and
  the burstiness of arrivals (KS on log inter-arrival gaps).

A changed setting is a prime suspect; the attribution then says how much of the burn each suspect explains.
The tests here use statistics of independent units (requests, gaps, counts), never trailing-window
aggregates, whose per-request values are autocorrelated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from causalsre.causal.graph import GraphSpec
from causalsre.windows import Window

ALPHA = 0.01  # significance level of every workload-shift test
MIN_RATE_CHANGE = 0.15  # relative change of the arrival rate that counts (like the KS effect threshold)
# run_settings names whose graph node is called otherwise: the harness records the offered load as arrival_rate,
# which the graph calls offered_rate (its arrival_rate is the rate measured from the requests).
SETTING_NODES = {"arrival_rate": "offered_rate"}


def rate_change(base: pd.DataFrame, inc: pd.DataFrame) -> dict:
    """Requests per second in each window and a conditional binomial (Poisson rate) test of equality.

    ``effect`` is the relative change, |r_i - r_b| / max(r_b, r_i), comparable to a KS distance."""
    n_b, n_i = len(base), len(inc)
    t_b, t_i = window_seconds(base), window_seconds(inc)
    r_b, r_i = n_b / t_b, n_i / t_i
    p_value = float(stats.binomtest(n_i, n_b + n_i, t_i / (t_b + t_i)).pvalue) if n_b + n_i else 1.0
    effect = abs(r_i - r_b) / max(r_b, r_i) if max(r_b, r_i) > 0 else 0.0
    return {"baseline": r_b, "incident": r_i, "effect": effect, "p_value": p_value,
            "significant": bool(p_value < ALPHA and effect >= MIN_RATE_CHANGE)}


def window_seconds(table: pd.DataFrame) -> float:
    """The window's length estimated from its arrivals: the span times n / (n - 1), the unbiased
    estimate for a Poisson process observed between its first and last arrival; at least one second."""
    times = pd.to_datetime(table["arrival_ts"])
    n = len(times)
    span = (times.max() - times.min()).total_seconds() if n else 0.0
    return max(span * n / (n - 1) if n > 1 else span, 1.0)


def workload_shifts(base: pd.DataFrame, inc: pd.DataFrame) -> list[dict]:
    """The workload measured from requests: rate, lengths, tenant mix, burstiness; each with its test."""
    rate = rate_change(base, inc)
    shifts = [{"kind": "workload", "name": "arrival_rate", "unit": "requests/s", **rate}]
    for column in ("prompt_tokens", "output_tokens"):
        if column in base.columns and column in inc.columns:
            shifts.append(_length_shift(column, base[column], inc[column]))
    if "tenant" in base.columns and "tenant" in inc.columns:
        shifts.append(_tenant_shift(base["tenant"], inc["tenant"]))
    gaps = _burstiness_shift(base, inc)
    if gaps is not None:
        shifts.append(gaps)
    return shifts


def _length_shift(column: str, b: pd.Series, i: pd.Series) -> dict:
    b, i = b.dropna().to_numpy(float), i.dropna().to_numpy(float)
    if len(b) < 2 or len(i) < 2:
        return {"kind": "workload", "name": column, "significant": False, "effect": 0.0, "p_value": 1.0}
    test = stats.ks_2samp(b, i)
    return {"kind": "workload", "name": column, "unit": "tokens", "baseline": float(np.mean(b)),
            "incident": float(np.mean(i)), "baseline_median": float(np.median(b)),
            "incident_median": float(np.median(i)), "effect": float(test.statistic),
            "p_value": float(test.pvalue), "significant": bool(test.pvalue < ALPHA and test.statistic >= 0.15)}


def _tenant_shift(b: pd.Series, i: pd.Series) -> dict:
    b, i = b.astype(str), i.astype(str)
    names = sorted(set(b) | set(i))
    share_b = {n: float((b == n).mean()) for n in names}
    share_i = {n: float((i == n).mean()) for n in names}
    tv = 0.5 * sum(abs(share_i[n] - share_b[n]) for n in names)
    p_value = 1.0
    if len(names) > 1:
        counts = np.array([[int((b == n).sum()) for n in names], [int((i == n).sum()) for n in names]])
        p_value = float(stats.chi2_contingency(counts)[1])
    grew = max(names, key=lambda n: share_i[n] - share_b[n])
    return {"kind": "workload", "name": "tenant", "unit": "share", "baseline": share_b, "incident": share_i,
            "largest_rise": grew, "effect": tv, "p_value": p_value,
            "significant": bool(p_value < ALPHA and tv >= 0.15)}


def _burstiness_shift(base: pd.DataFrame, inc: pd.DataFrame) -> dict | None:
    """Inter-arrival gaps, per run, scaled by each window's mean gap: burstier arrivals at the same rate
    spread the log gaps (a gamma shape k below 1 has squared coefficient of variation 1 / k)."""
    def gaps(table):
        out = []
        for _, group in table.groupby("run_id"):
            times = np.sort(pd.to_datetime(group["arrival_ts"]).astype("int64").to_numpy()) / 1e9
            d = np.diff(times)
            d = d[d > 0]
            if len(d) > 1:
                out.append(d / d.mean())
        return np.concatenate(out) if out else np.array([])

    g_b, g_i = gaps(base), gaps(inc)
    if len(g_b) < 10 or len(g_i) < 10:
        return None
    test = stats.ks_2samp(np.log(g_b), np.log(g_i))
    cv2 = lambda g: float(np.var(g) / np.mean(g) ** 2)  # noqa: E731
    return {"kind": "workload", "name": "burstiness", "unit": "squared CV of gaps", "baseline": cv2(g_b),
            "incident": cv2(g_i), "effect": float(test.statistic), "p_value": float(test.pvalue),
            "significant": bool(test.pvalue < ALPHA and test.statistic >= 0.15)}


def setting_changes(con, baseline: Window, incident: Window, base: pd.DataFrame, inc: pd.DataFrame,
                    graph: GraphSpec | None = None) -> list[dict]:
    """Recorded settings whose values in force differ between the windows' requests (run_settings)."""
    run_ids = sorted(set(base["run_id"]) | set(inc["run_id"]))
    if not run_ids:
        return []
    marks = ", ".join("?" for _ in run_ids)
    rows = con.execute(
        f"SELECT run_id, setting, start_ns, value, value_text FROM run_settings WHERE run_id IN ({marks}) "
        f"ORDER BY run_id, setting, start_ns", run_ids).df()
    if rows.empty:
        return []
    arrivals = {"baseline": _arrival_ns(con, base), "incident": _arrival_ns(con, inc)}
    out = []
    for setting, timeline in rows.groupby("setting", sort=True):
        in_force = {side: _values_in_force(timeline, frame) for side, frame in arrivals.items()}
        if in_force["baseline"] == in_force["incident"] or not in_force["incident"] or not in_force["baseline"]:
            continue
        changed_at = _first_change_ns(timeline, arrivals["incident"])
        setting = SETTING_NODES.get(str(setting), str(setting))
        out.append({"kind": "setting", "name": setting,
                    "baseline": _show(in_force["baseline"]), "incident": _show(in_force["incident"]),
                    "changed_at_ns": changed_at, "in_graph": bool(graph is not None and setting in graph.nodes),
                    "significant": True})
    return out


def _arrival_ns(con, table: pd.DataFrame) -> pd.DataFrame:
    """(run_id, arrival_ns) of the window's requests, on the clock run_settings uses."""
    keys = table[["run_id", "request_id"]]
    if keys.empty:
        return pd.DataFrame(columns=["run_id", "arrival_ns"])
    con.register("_pm_keys", keys)
    try:
        return con.execute("SELECT k.run_id, COALESCE(q.scheduled_arrival_ns, q.enqueue_ns) AS arrival_ns "
                           "FROM _pm_keys k JOIN requests q USING (run_id, request_id)").df()
    finally:
        con.unregister("_pm_keys")


def _values_in_force(timeline: pd.DataFrame, arrivals: pd.DataFrame) -> tuple:
    """The distinct values the setting had at the window's arrivals (sorted; text or numbers)."""
    seen = set()
    for run_id, group in arrivals.groupby("run_id"):
        t = timeline[timeline["run_id"] == run_id]
        if t.empty:
            continue
        starts = t["start_ns"].to_numpy()
        index = np.searchsorted(starts, group["arrival_ns"].dropna().to_numpy(), side="right") - 1
        for k in np.unique(index[index >= 0]):
            row = t.iloc[int(k)]
            seen.add(row["value_text"] if isinstance(row["value_text"], str) else
                     (None if pd.isna(row["value"]) else float(row["value"])))
    return tuple(sorted(seen, key=lambda v: (str(type(v)), v if v is not None else 0)))


def _first_change_ns(timeline: pd.DataFrame, incident_arrivals: pd.DataFrame) -> int | None:
    if incident_arrivals.empty:
        return None
    first = incident_arrivals["arrival_ns"].min()
    later = timeline[(timeline["start_ns"] > 0) & (timeline["start_ns"] <= incident_arrivals["arrival_ns"].max())]
    before = later[later["start_ns"] <= first]
    pick = before if not before.empty else later
    return int(pick["start_ns"].max() if not before.empty else pick["start_ns"].min()) if not pick.empty else None


def _show(values: tuple):
    return values[0] if len(values) == 1 else list(values)


def operator_events(con, base: pd.DataFrame, inc: pd.DataFrame) -> list[dict]:
    """Operator events (deploys, pushes, scale) from the baseline's first arrival to the incident's last."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "operator_events" not in tables:
        return []
    start = min(pd.to_datetime(base["arrival_ts"]).min(), pd.to_datetime(inc["arrival_ts"]).min())
    end = max(pd.to_datetime(base["arrival_ts"]).max(), pd.to_datetime(inc["arrival_ts"]).max())
    columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_name = 'operator_events'").fetchall()}
    if not {"ts_ns", "key"} <= columns:
        return []
    run_ids = sorted(set(base["run_id"]) | set(inc["run_id"]))
    marks = ", ".join("?" for _ in run_ids)
    # Events carry absolute epoch ns (imported) or a run's clock (harness): both are selected by run or time.
    epoch0 = pd.Timestamp("1970-01-01")
    lo, hi = int((start - epoch0).total_seconds() * 1e9), int((end - epoch0).total_seconds() * 1e9)
    frame = con.execute(
        f"SELECT * FROM operator_events WHERE (run_id IN ({marks})) OR (ts_ns BETWEEN ? AND ?) ORDER BY ts_ns",
        run_ids + [lo, hi]).df()
    return [{"kind": "event", "name": str(r["key"]), "value": None if pd.isna(r.get("value")) else str(r.get("value")),
             "event_kind": None if pd.isna(r.get("kind")) else str(r.get("kind")), "ts_ns": int(r["ts_ns"]),
             "significant": True} for _, r in frame.iterrows()]


def what_changed(con, baseline: Window, incident: Window, base: pd.DataFrame, inc: pd.DataFrame,
                 graph: GraphSpec | None = None) -> list[dict]:
    """Every recorded change between the windows: settings, operator events, workload shifts."""
    return (setting_changes(con, baseline, incident, base, inc, graph) + operator_events(con, base, inc)
            + workload_shifts(base, inc))


def describe_change(change: dict) -> str:
    """One line for a change, as the postmortem's first section prints it."""
    name, kind = change["name"], change["kind"]
    if kind == "setting":
        note = "" if change.get("in_graph", True) else "  (not in the graph: cannot be attributed)"
        return f"setting  {name}: {_fmt(change['baseline'])} -> {_fmt(change['incident'])}{note}"
    if kind == "event":
        what = f" = {change['value']}" if change.get("value") is not None else ""
        return f"event    {change.get('event_kind') or 'event'} {name}{what}"
    mark = "changed" if change.get("significant") else "steady "
    if name == "tenant":
        grew = change.get("largest_rise")
        before, after = change["baseline"].get(grew, 0.0), change["incident"].get(grew, 0.0)
        size = f"share of {grew} {before:.0%} -> {after:.0%}"
    else:
        size = f"{_fmt(change.get('baseline'))} -> {_fmt(change.get('incident'))} {change.get('unit', '')}".rstrip()
    return f"workload {name}: {size}  [{mark} p={change.get('p_value', 1.0):.2g}]"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "{" + ", ".join(_fmt(v) for v in value) + "}"
    return str(value)
