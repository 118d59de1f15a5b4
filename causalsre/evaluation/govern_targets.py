"""The targets of issue 15 for ``eval govern``, checked on the measured runs (pass, fail or not evaluated).

1. ``protects``: at 1.3x, ``budget`` keeps premium and standard at budget_consumed <= 1.0 on every workload and
   seed, where each baseline exceeds 1.0 for premium on at least one of them.
2. ``goodput``: at every load and workload, budget's goodput (mean over seeds) is >= 0.95 of the best
   baseline's.
3. ``throughput``: at 0.8x, budget's throughput (mean over seeds) is >= 0.97 of fcfs's on every workload.

A target whose runs are missing (no budget policy, no 1.3x load) is "not evaluated", with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean
from typing import Any

BASELINES = ("fcfs", "priority", "vtc", "edf")
PROTECT_LOAD, CALM_LOAD = 1.3, 0.8
GOODPUT_SHARE, THROUGHPUT_SHARE = 0.95, 0.97


def _consumed(run: dict, tier: str) -> float | None:
    return next((t["budget_consumed"] for t in run["tiers"] if t["tier"] == tier), None)


def _not_evaluated(text: str, why: str) -> dict[str, Any]:
    return {"target": text, "status": "not evaluated", "reason": why}


def protects(runs: list[dict]) -> dict[str, Any]:
    text = (f"at {PROTECT_LOAD:g}x budget keeps premium and standard budget_consumed <= 1.0 on every workload and "
            "seed, where each baseline exceeds 1.0 for premium on at least one")
    at = [r for r in runs if r["load"] == PROTECT_LOAD]
    governed = [r for r in at if r["policy"] == "budget"]
    if not governed:
        return _not_evaluated(text, f"no budget run at {PROTECT_LOAD:g}x")
    breaches = [{"workload": r["workload"], "seed": r["seed"], "tier": tier, "budget_consumed": _consumed(r, tier)}
                for r in governed for tier in ("premium", "standard")
                if (_consumed(r, tier) or 0.0) > 1.0]
    baselines = {}
    for policy in BASELINES:
        mine = [r for r in at if r["policy"] == policy]
        if mine:
            worst = max((_consumed(r, "premium") or 0.0) for r in mine)
            baselines[policy] = {"worst_premium_budget_consumed": round(worst, 4), "exceeds": worst > 1.0}
    missing = [p for p in BASELINES if p not in baselines]
    ok = not breaches and bool(baselines) and all(b["exceeds"] for b in baselines.values())
    out = {"target": text, "status": "pass" if ok else "fail", "budget_breaches": breaches, "baselines": baselines}
    if missing:
        out["baselines_not_run"] = missing
    return out


def _mean_by(runs: list[dict], key: str) -> dict[tuple, float]:
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in runs:
        if r[key] is not None:
            groups[(r["workload"], r["load"], r["policy"])].append(r[key])
    return {k: mean(v) for k, v in groups.items()}


def goodput(runs: list[dict]) -> dict[str, Any]:
    text = f"budget's goodput >= {GOODPUT_SHARE:g} x the best baseline's at every load (mean over seeds)"
    means = _mean_by(runs, "goodput_rps")
    cases = []
    for workload, load in sorted({(w, l) for w, l, p in means if p == "budget"}):
        best = max(((means[(workload, load, p)], p) for p in BASELINES if (workload, load, p) in means),
                   default=None)
        if best is None:
            continue
        mine = means[(workload, load, "budget")]
        ratio = mine / best[0] if best[0] > 0 else None
        cases.append({"workload": workload, "load": load, "budget": round(mine, 3), "best_baseline": best[1],
                      "best": round(best[0], 3), "ratio": None if ratio is None else round(ratio, 3),
                      "ok": ratio is None or ratio >= GOODPUT_SHARE})
    if not cases:
        return _not_evaluated(text, "no load with both budget and a baseline")
    return {"target": text, "status": "pass" if all(c["ok"] for c in cases) else "fail", "cases": cases}


def throughput(runs: list[dict]) -> dict[str, Any]:
    text = f"at {CALM_LOAD:g}x budget's throughput >= {THROUGHPUT_SHARE:g} x fcfs's (mean over seeds)"
    means = _mean_by(runs, "throughput_tok_s")
    cases = []
    for workload in sorted({w for w, l, p in means if l == CALM_LOAD and p == "budget"}):
        fcfs = means.get((workload, CALM_LOAD, "fcfs"))
        if fcfs is None:
            continue
        mine = means[(workload, CALM_LOAD, "budget")]
        ratio = mine / fcfs if fcfs > 0 else None
        cases.append({"workload": workload, "budget": round(mine, 2), "fcfs": round(fcfs, 2),
                      "ratio": None if ratio is None else round(ratio, 3),
                      "ok": ratio is None or ratio >= THROUGHPUT_SHARE})
    if not cases:
        return _not_evaluated(text, f"no {CALM_LOAD:g}x load with both budget and fcfs")
    return {"target": text, "status": "pass" if all(c["ok"] for c in cases) else "fail", "cases": cases}


def summarize_targets(runs: list[dict]) -> dict[str, Any]:
    return {"protects": protects(runs), "goodput": goodput(runs), "throughput": throughput(runs)}
