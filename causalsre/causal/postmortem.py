"""Postmortem: how much each factor contributed to the change in the bad-event rate between two windows.

Pipeline: analysis tables of both windows -> mechanisms fitted on the pooled requests -> detected changes
(players) -> exact Shapley values over row pairs -> bootstrap intervals -> families, plus the most anomalous
incident requests with their own attributions. Speed at 100k requests comes from subsampling and batching:
rates and burn use every request, but change tests use at most 10k requests per window and mechanisms are
fitted on 5k per window (histogram gradient boosting, 40 trees, plus a scale model); Shapley values are
computed on ``n_pairs`` sampled request pairs (2,000 by default) over at most 6 players, with every
coalition pushed through each mechanism in one batched predict, and only nodes downstream of a coalition's
players recomputed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.causal.binding import mark_idle_caps
from causalsre.causal.graph import GraphSpec
from causalsre.causal.changes import rate_change, what_changed
from causalsre.causal.load_mode import closed_loop_graph, is_cause
from causalsre.causal.mechanisms import Change, detect_changes, encode, fit_mechanisms, residuals
from causalsre.causal.players import (RATE_FACTOR, group_players, grouped, merge_collinear, move_to_tenant,
                                      split_joint, tenant_shares)
from causalsre.causal.server_changes import closed_loop
from causalsre.causal.shapley import CoalitionEvaluator, bootstrap_means, request_variance, shapley_per_pair, widen
from causalsre.causal.subsample import plan_subsample
from causalsre.causal.table import build_analysis_table
from causalsre.causal.verdict import burn_fell, burn_test, cannot_tell
from causalsre.windows import Window, check_disjoint

METHOD = ("exact Shapley over detected changes (root distributions, mechanism noise) with gradient-boosted "
          "mechanisms fitted on pooled windows; bootstrap over request pairs")
OTHER = "other (undetected changes and sampling)"
ANALYSIS_ROWS_PER_WINDOW = 10_000


def burn_summary(table: pd.DataFrame, objective: float | None) -> dict:
    return burn_counts(len(table), int(table["is_bad"].sum()), objective)


def burn_counts(n: int, bad: int, objective: float | None) -> dict:
    rate = bad / n if n else 0.0
    summary = {"requests": n, "bad_events": bad, "bad_rate": rate}
    if objective is not None:
        budget = 1.0 - objective
        summary["objective"] = objective
        summary["burn_rate"] = rate / budget  # 1.0 spends the budget exactly over the SLO window
        summary["budget_burned"] = bad / (budget * n) if n else 0.0  # share of this window's own allowance
    return summary


def postmortem(con, slo, baseline: Window, incident: Window, graph: GraphSpec, *, seed: int = 0,
               n_pairs: int = 2000, n_boot: int = 300, top_requests: int = 5, progress=None,
               verify_db: str | None = None, verify_top: int = 3) -> dict:
    """Attribute the change in the bad-event rate from ``baseline`` to ``incident``; a JSON-ready dict.

    ``verify_db`` (the path ``con`` reads) also replays the incident through the harness once per top
    ``verify_top`` named cause with that cause reverted (:mod:`causalsre.causal.verify`): the result gains
    ``verification`` and the causes are ranked by their verified share."""
    import sklearn.ensemble  # noqa: F401  (loads OpenMP first: threadpoolctl limits only loaded libraries)
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: the models are small (<= 10k rows), so threads buy little, and on a shared 2-core
    # machine oversubscribed OpenMP threads spin: 100k requests took 62 s with 2 threads, 11 s with 1.
    with threadpool_limits(limits=1):
        result, tables = _postmortem(con, slo, baseline, incident, graph, seed=seed, n_pairs=n_pairs,
                                     n_boot=n_boot, top_requests=top_requests, progress=progress)
    if verify_db is not None and result.get("attributions"):
        from causalsre.causal.verify import verify_postmortem

        result["verification"] = verify_postmortem(result, db_path=verify_db, slo=slo, baseline_table=tables[0],
                                                   incident_table=tables[1], con=con, top_k=verify_top,
                                                   seed=seed, progress=progress)
    return result


def _postmortem(con, slo, baseline, incident, graph, *, seed, n_pairs, n_boot, top_requests, progress):
    """(result, (baseline table, incident table)): the tables hold every request of each window."""
    check_disjoint(baseline, incident, con)
    graph.check_recorded_settings(con, baseline, incident)  # a changed setting the graph lacks: refuse, naming it
    step = progress or (lambda *_: None)
    step("reading requests")
    # Windows of millions of requests: a stratified sample for the tables; counts and burn still use every one.
    plan = plan_subsample(con, slo, {"baseline": baseline, "incident": incident}, seed=seed)
    base = build_analysis_table(con, slo, window=baseline, graph=graph, keep=plan and plan.keys("baseline"))
    inc = build_analysis_table(con, slo, window=incident, graph=graph, keep=plan and plan.keys("incident"))
    objective = getattr(slo, "objective", None)
    result = {"method": METHOD, "graph": graph.source, "seed": seed, "baseline": baseline.label,
              "incident": incident.label, "n_baseline": len(base), "n_incident": len(inc),
              "burn": {"baseline": burn_summary(base, objective), "incident": burn_summary(inc, objective)}}
    if closed_loop(con, base, inc):  # the arrival rate follows the server's speed: a mediator (load_mode.py)
        graph = closed_loop_graph(graph)
        result["load_mode"] = "closed_loop"
    if plan is not None:
        result.update(plan.report(burn_counts, objective))
    total = float(inc["is_bad"].mean() - base["is_bad"].mean())
    result["total_change"] = total
    # Is the change in bad events more than chance? If not, a cause is never named (verdict.py).
    result["burn_test"] = burn_test(result["burn"])
    if (why := cannot_tell(result["burn"], result["burn_test"])) and (base["is_bad"].any() or inc["is_bad"].any()):
        result["cannot_tell"] = why
    if fell := burn_fell(result["burn"], result["burn_test"]):
        result["burn_fell"] = fell  # an improvement: what changed explains it, no cause is blamed for a burn
    # What changed comes first, whether or not there is a burn to attribute.
    result["changes"] = what_changed(con, baseline, incident, base, inc, graph)
    # A changed cap the engine never reached in either window cannot have acted: it gets no share (binding.py).
    idle = mark_idle_caps(con, result["changes"], base, inc)
    if idle:
        result["idle_settings"] = idle
    if not inc["is_bad"].any() and not base["is_bad"].any():
        return {**result, "attributions": [], "families": [], "anomalous_requests": [],
                "nothing_to_attribute": "no bad events in either window"}, (base, inc)
    # An idle cap is no parent either: constant per window, a fitted mechanism would read it as the window's mark.
    # Nor is a trailing aggregate of another factor that did not move (the recent arrivals' mean prompt when
    # prompts did not change): its window-to-window difference is chance, autocorrelated, and marks the window.
    moved = {c["name"] for c in result["changes"] if c["kind"] in ("workload", "setting") and c.get("significant")
             and c["name"] not in idle}
    # Left in, it kept its baseline values in every coalition while the mechanisms read it as the incident's
    # mark: a KV shrink over a 30 s incident explained -5 of 27 points, CPU contention that stopped mid-window
    # 2 of 37, the rest in "other" (now 34 of 27 and 36 of 37; docs/evaluation.md).
    marks = {n for n, spec in graph.nodes.items() if spec.trailing and spec.factor and spec.factor != n
             and spec.cause not in moved}
    present = graph.restricted_to([n for n in graph.nodes if n in base.columns and n not in set(idle) | marks])
    rng = np.random.default_rng(seed)
    # Counts of every request, before subsampling: the window-level workload tests and the tenant split.
    by_tenant = tenant_shares(base, inc)
    rate = rate_change(base, inc)
    tables = (base, inc)
    # Rates and burn above use every request; the models and the change tests need far fewer.
    base, inc = _subsample(base, rng), _subsample(inc, rng)
    data = encode(base, inc, present)
    step("fitting mechanisms", len(data.nodes))
    mechanisms = fit_mechanisms(data, present, seed, progress=lambda: step(None))
    res_b, res_i = residuals(data.baseline, mechanisms), residuals(data.incident, mechanisms)
    ancestors = _ancestors(present, graph.target)
    changes = [c for c in detect_changes(data, res_b, res_i, present, limit=None) if c.node in ancestors]
    changes += _rate_change(rate, present, mechanisms)
    changes += _recorded_suspects(result["changes"], changes, present, mechanisms)
    changes = [c for c in changes if present.factor_of(c.node) not in idle]
    # Knobs or faults that all changed at the boundary and are constant in each window cannot be told apart
    # from two windows: they are one joint player whose value is shared equally (and flagged); --verify splits them.
    players, collinear = merge_collinear(group_players(changes, present, moved=moved), data.baseline, data.incident,
                                         present)
    pb, pi = rng.integers(0, len(base), n_pairs), rng.integers(0, len(inc), n_pairs)
    evaluator = CoalitionEvaluator(data.nodes, mechanisms, [n for p in players for n in p.nodes], graph.target)
    base_m, inc_m = data.baseline.to_numpy(float)[pb], data.incident.to_numpy(float)[pi]
    rb = {n: res_b[n].to_numpy()[pb] for n in res_b.columns}
    ri = {n: res_i[n].to_numpy()[pi] for n in res_i.columns}
    step("attributing", 1)
    means: dict = {}
    phi = shapley_per_pair(grouped(lambda cs: evaluator.values(base_m, inc_m, rb, ri, cs), players),
                           [p.factor for p in players], means)
    step(None)
    # The model's bad rate with only some changes in place: what reverting the others would leave (whatif).
    result["coalition_bad_rates"] = [{"changed": sorted(c), "bad_rate": m}
                                     for c, m in sorted(means.items(), key=lambda cm: (len(cm[0]), sorted(cm[0])))]
    phi, players = split_joint(phi, players, collinear)
    # Load or lengths that changed because one tenant's traffic did are that tenant's (a flood).
    phi, players = move_to_tenant(phi, players, by_tenant)
    result["tenant_composition_share"] = by_tenant
    sizes = (pb, pi, len(base), len(inc))  # the requests behind the pairs: their sampling variance widens the intervals
    result["attributions"], result["families"] = _summaries(phi, players, graph, total, n_boot, rng, sizes)
    _mark_ties(result, [p.factor for p in collinear])
    result["anomalous_requests"] = _anomalous_requests(inc, data, res_b, res_i, evaluator, players, top_requests, rng)
    return result, tables


def _mark_ties(result: dict, confounded: list[str]) -> None:
    """Causes that changed at one instant and held one value per window share equally: their order is no
    ranking. Each row says so (``confounded_with``, ``tie``), and so does each one's entry of what changed."""
    if not confounded:
        return
    why = ("changed at the same instant as {} and held one value per window: two windows cannot separate "
           "them, so they share equally and their order is not a ranking; `postmortem --verify` replays each reverted")
    for row in result["attributions"]:
        if row["factor"] in confounded:
            row["confounded_with"] = [f for f in confounded if f != row["factor"]]
            row["tie"] = why.format(", ".join(row["confounded_with"]))
    for change in result["changes"]:
        if change.get("kind") in ("setting", "workload") and change["name"] in confounded:
            change["tie"] = why.format(", ".join(f for f in confounded if f != change["name"]))
    result["tied_causes"] = sorted(confounded)


def _rate_change(rate: dict, graph: GraphSpec, mechanisms: dict) -> list[Change]:
    """The measured arrival rate as a change when the window-level rate test says it moved (a trailing
    aggregate is never tested per request)."""
    # Evidence of a change of load only where the rate is a root: a closed loop's rate is the server's effect.
    if not is_cause(graph, RATE_FACTOR) or not rate["significant"]:
        return []
    kind = "mechanism" if RATE_FACTOR in mechanisms else "distribution"
    return [Change(RATE_FACTOR, kind, float(rate["effect"]), float(rate["p_value"]))]


def _recorded_suspects(recorded: list[dict], detected: list[Change], graph: GraphSpec, mechanisms: dict) -> list[Change]:
    """A setting the producer recorded as changed (a knob, a fault, the configured workload) is a player even
    when the windows hold too few requests for a test to see its effect: the record is the evidence."""
    have = {graph.factor_of(c.node) for c in detected}
    out = []
    for change in recorded:
        node = change["name"]
        if change["kind"] != "setting" or node not in graph.nodes or graph.factor_of(node) in have:
            continue
        kind = "mechanism" if node in mechanisms else "distribution"
        out.append(Change(node, kind, 1.0, 0.0))
        have.add(graph.factor_of(node))
    return out


def _subsample(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    if len(table) <= ANALYSIS_ROWS_PER_WINDOW:
        return table
    keep = np.sort(rng.choice(len(table), ANALYSIS_ROWS_PER_WINDOW, replace=False))
    return table.iloc[keep].reset_index(drop=True)


def _ancestors(graph: GraphSpec, target: str) -> set[str]:
    import networkx as nx

    nx_graph = graph.to_networkx()
    return nx.ancestors(nx_graph, target) | {target} if target in nx_graph else set()


def _family(player, graph: GraphSpec) -> str:
    return graph.family_of(player.factor if player.factor in graph.nodes else player.nodes[0])


def _family_group(player, graph: GraphSpec) -> str:
    """Families sum causes; unexplained changes of engine state and outcomes are a group of their own."""
    return _family(player, graph) if player.role == "cause" else "unexplained"


def _interval(per_pair: np.ndarray, n_boot: int, rng, sizes) -> tuple[np.ndarray, np.ndarray]:
    """95 % intervals of the row means: the pair bootstrap, widened by the requests' own sampling variance."""
    low, high = bootstrap_means(per_pair, n_boot, rng)
    return widen(per_pair.mean(axis=1), low, high, request_variance(per_pair, *sizes))


def _summaries(phi, players, graph, total, n_boot, rng, sizes) -> tuple[list[dict], list[dict]]:
    families = sorted({_family_group(p, graph) for p in players})
    family_rows = np.array([[_family_group(p, graph) == f for p in players] for f in families], dtype=float)
    # The "other" row makes the contributions sum to the observed change exactly.
    per_pair = np.vstack([phi, total - phi.sum(axis=0, keepdims=True)]) if players else np.full((1, 1), total)
    low, high = _interval(per_pair, n_boot, rng, sizes)
    means = per_pair.mean(axis=1)
    rows = [{"factor": p.factor, "family": _family(p, graph), "kind": p.kind, "role": p.role,
             "nodes": list(p.nodes), "contribution": float(means[k]), "ci_low": float(low[k]),
             "ci_high": float(high[k])} for k, p in enumerate(players)]
    rows.append({"factor": OTHER, "family": "other", "kind": "residual", "role": "residual", "nodes": [],
                 "contribution": float(means[-1]), "ci_low": float(low[-1]), "ci_high": float(high[-1])})
    # Causes first: an unexplained change of engine state or an outcome says how the burn showed, not why.
    rank = {"cause": 0, "unexplained": 1, "residual": 2}
    rows.sort(key=lambda r: (rank[r["role"]], -r["contribution"], r["factor"]))
    fam = []
    if players:
        fam_pairs = family_rows @ phi
        f_low, f_high = _interval(fam_pairs, n_boot, rng, sizes)
        fam = [{"family": f, "contribution": float(fam_pairs[k].mean()), "ci_low": float(f_low[k]),
                "ci_high": float(f_high[k])} for k, f in enumerate(families)]
    fam.append({"family": "other", "contribution": rows[[r["factor"] for r in rows].index(OTHER)]["contribution"],
                "ci_low": float(low[-1]), "ci_high": float(high[-1])})
    fam.sort(key=lambda r: (r["family"] in ("unexplained", "other"), -r["contribution"], r["family"]))
    return rows, fam


def _anomalous_requests(inc, data, res_b, res_i, evaluator, players, top, rng, pairs_per_request: int = 100):
    """The incident's most anomalous requests (bad first, then by outcome z-scores against the baseline),
    each with the Shapley attribution of its own bad-event value against random baseline requests."""
    outcomes = [c for c in ("queue_s", "ttft_s", "tpot_s", "e2e_s") if c in data.nodes]
    base_vals = data.baseline[outcomes]
    scale = (base_vals.quantile(0.75) - base_vals.quantile(0.25)).replace(0, 1e-9)
    z = ((data.incident[outcomes] - base_vals.median()) / scale).fillna(0).max(axis=1)
    order = np.lexsort((-z.to_numpy(), -inc["is_bad"].to_numpy(dtype=float)))[:top]
    if len(order) == 0:
        return []
    # Every request's pairs go through the mechanisms together: one batched evaluation, then a mean per block.
    pb = rng.integers(0, len(data.baseline), pairs_per_request * len(order))
    pi = np.repeat(order, pairs_per_request)
    base_m, inc_m = data.baseline.to_numpy(float)[pb], data.incident.to_numpy(float)[pi]
    rb = {n: res_b[n].to_numpy()[pb] for n in res_b.columns}
    ri = {n: res_i[n].to_numpy()[pi] for n in res_i.columns}
    phi = shapley_per_pair(grouped(lambda cs: evaluator.values(base_m, inc_m, rb, ri, cs), players),
                           [p.factor for p in players])
    found = []
    for block, row in enumerate(order):
        mean = phi[:, block * pairs_per_request:(block + 1) * pairs_per_request].mean(axis=1)
        contributions = sorted(zip([p.factor for p in players], mean), key=lambda t: -t[1])
        found.append({"run_id": inc["run_id"].iloc[row], "request_id": int(inc["request_id"].iloc[row]),
                      "is_bad": bool(inc["is_bad"].iloc[row]), "anomaly_z": float(z.iloc[row]),
                      **{c: _float(inc[c].iloc[row]) for c in outcomes},
                      "attributions": [{"factor": p, "contribution": float(v)} for p, v in contributions]})
    return found


def _float(value):
    return None if pd.isna(value) else float(value)

