"""What changed between the baseline and the incident: the first section of every postmortem.

Five kinds of change, each with its size and, for the workload, a test of significance:

* **settings** recorded by the producer (``run_settings``: knobs, hardware faults, the offered load), with the
  time each new value took effect;
* **server settings the graph lacks** (the server's info gauges, e.g. prefix caching off:
  :mod:`causalsre.causal.server_changes`), prime suspects the attribution cannot size;
* **operator events** (``operator_events``: deploys, config pushes, scale events, from the harness or
  ``causalsre db import events``) between the baseline's start and the incident's end;
* **governor actions** (``control_actions``: the budget governor's shedding, deferral and batching decisions
  with the tier and burn that triggered them) and the requests it shed in each window, by tenant;
* **workload shifts** measured from the requests themselves (works for imported telemetry too): the arrival
  rate (Poisson rate test), the prompt and output lengths (two-sample KS), the tenant mix (chi-square) and
  the burstiness of arrivals (KS on log inter-arrival gaps).

A changed setting is a prime suspect; the attribution then says how much of the burn each suspect explains.
The tests here use statistics of independent units (requests, gaps, counts), never trailing-window
aggregates, whose per-request values are autocorrelated.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from causalsre.causal.change_text import describe_change  # noqa: F401  (re-exported: its public path)
from causalsre.causal.graph import GraphSpec
from causalsre.causal.mix_faces import mark_mix_faces
from causalsre.causal.server_changes import closed_loop, server_config_changes, unmeasured_gaps

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


def setting_changes(con, baseline, incident, graph: GraphSpec | None = None) -> list[dict]:
    """Recorded settings whose values in force at the windows' arrivals differ (``run_settings``, or the
    ``runs`` row where a run has no timeline; read by :func:`causalsre.causal.graph.recorded_settings`)."""
    from causalsre.causal.graph import recorded_settings

    before, after = recorded_settings(con, baseline), recorded_settings(con, incident)
    out = []
    for setting in sorted(set(before) | set(after)):
        name = SETTING_NODES.get(setting, setting)
        in_graph = bool(graph is not None and (name in graph.nodes or setting in graph.nodes))
        if setting not in before or setting not in after:
            out.append(_one_sided(name, before.get(setting), after.get(setting), in_graph))
            continue
        if _rounded(before[setting]) == _rounded(after[setting]):
            continue  # equal up to float noise (a tenant's share recomputed as 0.7499999999999999)
        out.append({"kind": "setting", "name": name, "baseline": _show(before[setting]),
                    "incident": _show(after[setting]), "in_graph": in_graph, "significant": True})
    return out


def _one_sided(name: str, before: set | None, after: set | None, in_graph: bool) -> dict:
    """A setting recorded in one window only (``--metadata`` on the baseline's bench file, not the incident's):
    it may have changed to a value nobody recorded. Its own kind, so nothing downstream takes "unknown" for a
    value (to the cap check a missing timeout is "no timeout"); it used to be dropped without a word."""
    known = "baseline" if after is None else "incident"
    return {"kind": "unknown_setting", "name": name, "baseline": None if before is None else _show(before),
            "incident": None if after is None else _show(after), "recorded_in": known, "in_graph": in_graph,
            "significant": True}


def _rounded(values: set) -> set:
    return {(None if number is None else float(f"{number:.9g}"), text) for number, text in values}


def _show(values: set):
    """One value, or the sorted list of values a window saw (numbers as numbers, text as text)."""
    shown = sorted((text if text is not None else number for number, text in values),
                   key=lambda v: (isinstance(v, str), v if v is not None else 0))
    return shown[0] if len(shown) == 1 else shown


def _arrival_spans(con, base: pd.DataFrame, inc: pd.DataFrame) -> list[tuple[str, int, int]]:
    """(run_id, first, last) arrival of the two windows' requests per run, in run order, on the clock
    run_settings and operator_events use: one aggregation inside DuckDB over both windows' keys (each window's
    arrivals were pulled into pandas twice, once for the events and once for the governor's actions)."""
    keys = pd.concat([base[["run_id", "request_id"]], inc[["run_id", "request_id"]]], ignore_index=True)
    if keys.empty:
        return []
    con.register("_pm_keys", keys)
    try:
        return con.execute("SELECT k.run_id, min(COALESCE(q.scheduled_arrival_ns, q.enqueue_ns)), "
                           "max(COALESCE(q.scheduled_arrival_ns, q.enqueue_ns)) "
                           "FROM _pm_keys k JOIN requests q USING (run_id, request_id) "
                           "GROUP BY k.run_id ORDER BY k.run_id").fetchall()
    finally:
        con.unregister("_pm_keys")


_ANY_ROW = {"operator_events": "SELECT EXISTS (SELECT 1 FROM operator_events)",
            "control_actions": "SELECT EXISTS (SELECT 1 FROM control_actions)"}


def _has_rows(con, table: str) -> bool:
    """Whether the (existing) table holds a row: most databases have no operator events or governor actions,
    and then no span of arrivals is needed at all."""
    return bool(con.execute(_ANY_ROW[table]).fetchall()[0][0])


def operator_events(con, base: pd.DataFrame, inc: pd.DataFrame, spans: list | None = None) -> list[dict]:
    """Operator events (deploys, pushes, scale) of the windows' runs, from the baseline's first arrival to the
    incident's last, on the run's clock (``db import events --run RUN`` puts imported events there).
    ``spans`` are :func:`_arrival_spans` when the caller has them already."""
    if not _has_table(con, "operator_events") or not _has_rows(con, "operator_events"):
        return []
    out = []
    for run_id, start, end in _arrival_spans(con, base, inc) if spans is None else spans:
        rows = con.execute("SELECT ts_ns, key, value, kind FROM operator_events WHERE run_id = ? "
                           "AND ts_ns BETWEEN ? AND ? ORDER BY ts_ns", [run_id, int(start), int(end)]).fetchall()
        out += [{"kind": "event", "name": str(key), "value": None if value is None else str(value),
                 "event_kind": kind, "ts_ns": int(ts), "run_id": run_id, "significant": True}
                for ts, key, value, kind in rows]
    return sorted(out, key=lambda e: e["ts_ns"])


def _has_table(con, name: str) -> bool:
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
    return bool(found.fetchall()[0][0])


def governor_actions(con, base: pd.DataFrame, inc: pd.DataFrame, spans: list | None = None) -> list[dict]:
    """The budget governor's decisions (``control_actions``) over the same span as the operator events, and
    the requests it shed in each window by tier: a burn that the governor chose (shedding a sheddable tier to
    protect a critical one) is a change to report, not a fault to hunt for. Its knob changes (batching depth)
    are settings in ``run_settings`` and appear with the other settings."""
    if not _has_table(con, "control_actions"):
        return []
    out = []
    if not _has_rows(con, "control_actions"):
        spans = []
    elif spans is None:
        spans = _arrival_spans(con, base, inc)
    for run_id, start, end in spans:
        rows = con.execute(
            "SELECT ts_ns, action, tier, reason, short_burn, long_burn, budget_remaining, params_before, "
            "params_after FROM control_actions WHERE run_id = ? AND ts_ns BETWEEN ? AND ? "
            "AND action NOT IN ('final_counters', 'length_predictor') ORDER BY ts_ns",
            [run_id, int(start), int(end)]).fetchall()
        out += [{"kind": "control", "name": action, "tier": tier, "reason": reason, "short_burn": short,
                 "long_burn": long, "budget_remaining": left, "before": _json(before), "after": _json(after),
                 "ts_ns": int(ts), "run_id": run_id, "significant": True}
                for ts, action, tier, reason, short, long, left, before, after in rows]
    sheds = {name: _shed_counts(con, table) for name, table in (("baseline", base), ("incident", inc))}
    if sheds["baseline"] or sheds["incident"]:
        out.append({"kind": "control", "name": "shed_requests", "baseline": sheds["baseline"],
                    "incident": sheds["incident"], "significant": True})
    return out


def _shed_counts(con, table: pd.DataFrame) -> dict[str, int]:
    """Requests of the window the governor rejected to protect another tier (finish_reason shed_*), by tenant."""
    keys = table[["run_id", "request_id"]]
    if keys.empty:
        return {}
    con.register("_pm_shed_keys", keys)
    try:
        rows = con.execute("SELECT q.tenant, count(*) FROM _pm_shed_keys k JOIN requests q USING (run_id, request_id) "
                           "WHERE q.finish_reason LIKE 'shed\\_%' ESCAPE '\\' GROUP BY q.tenant ORDER BY q.tenant").fetchall()
    finally:
        con.unregister("_pm_shed_keys")
    return {str(tenant): int(n) for tenant, n in rows}


def _json(text):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def what_changed(con, baseline, incident, base: pd.DataFrame, inc: pd.DataFrame,
                 graph: GraphSpec | None = None) -> list[dict]:
    """Every recorded change between the windows: settings, operator events, governor actions, workload shifts."""
    spans = None
    if any(_has_table(con, t) and _has_rows(con, t) for t in ("operator_events", "control_actions")):
        spans = _arrival_spans(con, base, inc)  # once for both
    shifts = workload_shifts(base, inc)
    mark_mix_faces(shifts, base, inc, ALPHA)   # lengths that only follow the tenant mix are its faces
    if closed_loop(con, base, inc):  # the rate and the gaps follow the server's answers (load_mode.py)
        for shift in shifts:
            if shift["name"] in ("arrival_rate", "burstiness"):
                shift["closed_loop"] = True
    if unmeasured_gaps(con, base, inc):  # evenly spread arrivals: their gaps' test would see rounding noise
        for shift in shifts:
            if shift["name"] == "burstiness":
                shift.update(significant=False, not_measured="a run's file has no send times: its arrivals are "
                             "spread evenly, so the gaps between them were not measured")
    return (setting_changes(con, baseline, incident, graph) + server_config_changes(con, base, inc)
            + operator_events(con, base, inc, spans)
            + governor_actions(con, base, inc, spans) + shifts)
