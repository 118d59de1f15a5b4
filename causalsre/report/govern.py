"""The ``eval govern`` report: the runs table, the targets, and each tier's budget burn-down per policy.

Formatting only: every number comes from :func:`causalsre.evaluation.govern.evaluate_govern`.
"""

from __future__ import annotations

from typing import Any

from causalsre.report.document import Figure, Report, Section, Table

# One colour per policy, from the report palette's family colours (the governor in the batching blue).
POLICY_COLOURS = {"fcfs": "#8a8f98", "priority": "#3ba55c", "vtc": "#8e44ad", "edf": "#d4623b", "budget": "#3b6fd4"}
INK, BREACH = "#1d2433", "#b03a48"
# Line styles too, so policies with identical curves (edf = fcfs when tiers share thresholds) stay visible.
POLICY_STYLES = {"fcfs": "-", "priority": "--", "vtc": "-.", "edf": ":", "budget": "-"}
TIER_ORDER = ("premium", "standard", "free")


def burndown_figure(curves: dict[str, dict[str, dict]], workload: str, load: float, seed: int) -> Figure:
    """One panel per tier; a line per policy of the tier's budget remaining over the run."""
    from matplotlib.figure import Figure as MplFigure   # no pyplot: nothing global changes

    fig = MplFigure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, len(TIER_ORDER), sharex=True)
    for ax, tier in zip(axes, TIER_ORDER):
        for policy, by_tier in curves.items():
            curve = by_tier.get(tier, {"t_s": [], "remaining": []})
            values = [100 * v for v in curve["remaining"]]
            ax.step(curve["t_s"], values, where="post", linewidth=2.2 if policy == "budget" else 1.5, label=policy,
                    color=POLICY_COLOURS.get(policy, INK), linestyle=POLICY_STYLES.get(policy, "-"))
        ax.axhline(0, color=BREACH, linewidth=0.8)
        # overload overspends by orders of magnitude: linear from -100 % to 100 %, logarithmic beyond
        ax.set_yscale("symlog", linthresh=100)
        ax.set_title(tier)
        ax.set_xlabel("seconds since the first arrival")
    axes[0].set_ylabel("budget remaining (%)")
    axes[-1].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"{workload}, {load:g}x capacity, seed {seed}")
    caption = (f"Error budget remaining per tier over the {workload} run at {load:g}x (seed {seed}): 1 - bad "
               "events so far / (error budget x the tier's events in the run); below zero the tier's SLO is "
               "breached for the run (the axis is logarithmic below -100 %).")
    return Figure.from_matplotlib(fig, caption)


def _consumed(run: dict, tier: str):
    return next((t["budget_consumed"] for t in run["tiers"] if t["tier"] == tier), None)


def govern_report(result: dict[str, Any]) -> Report:
    runs = result["runs"]
    rows = [[r["workload"], r["load"], r["seed"], r["policy"], r["throughput_tok_s"], r["goodput_rps"],
             *(_consumed(r, t) for t in TIER_ORDER), r["rejected"], r["actions"], r.get("speed_probe_ms"),
             "yes" if r.get("speed_flagged") else ""] for r in runs]
    table = Table(["workload", "load", "seed", "policy", "tokens/s", "goodput req/s",
                   *(f"{t} budget used" for t in TIER_ORDER), "rejected", "actions", "speed probe ms",
                   "speed flagged"], rows,
                  "Budget used: 1.0 = the tier's whole error budget spent (slo report over the run). Speed "
                  "flagged: the machine's speed probe moved beyond the tolerance during the (load, seed) group.")
    summary = [f"{name}: {t['status']}: {t['target']}" + (f" ({t['reason']})" if "reason" in t else "")
               + (f"; on steady groups only: {t['steady_status']}" if "steady_status" in t else "")
               for name, t in result["summary"].items()]
    figures = []
    cases: dict[tuple, dict] = {}
    for (workload, load, seed, policy), curves in result.get("burndown", {}).items():
        # One seed per case (the first) keeps the report readable; every seed is in the table.
        if seed == result.get("setup", {}).get("first_seed", 0):
            cases.setdefault((workload, load, seed), {})[policy] = curves
    for (workload, load, seed), curves in sorted(cases.items()):
        figures.append(burndown_figure(curves, workload, load, seed))
    setup = result.get("setup", {})
    paragraphs = [f"{w}: capacity {v['capacity_rps']} req/s; TTFT <= {v['thresholds']['ttft_s']} s and TPOT <= "
                  f"{v['thresholds']['tpot_s']} s ({v['thresholds']['rule']})."
                  for w, v in setup.get("workloads", {}).items()]
    paragraphs += [f"{w} {name}: TTFT <= {t['ttft_s']} s, TPOT <= {t['tpot_s']} s (objective {t['objective']}, "
                   f"confidence {t['confidence']})" for w, v in setup.get("workloads", {}).items()
                   for name, t in v["thresholds"].get("tiers", {}).items()]
    clock = setup.get("clock") or {"mode": "wall"}
    if clock.get("mode") == "modelled":
        paragraphs.append(f"Clock: modelled (step-cost model, {clock.get('source', 'given')}: " + ", ".join(
            f"{k} {v:g}" for k, v in clock.get("coefficients", {}).items()) + "); latencies are in model time.")
    else:
        paragraphs.append("Clock: wall (the machine's real time; groups flagged when its speed moved).")
    paragraphs += [f"skipped {w}: {why}" for w, why in setup.get("skipped", {}).items()]
    if setup.get("note"):
        paragraphs.append(setup["note"])
    flagged = setup.get("flagged_cases", [])
    paragraphs.append(f"{len(flagged)} of {len(setup.get('cases', []))} (load, seed) groups flagged: the speed "
                      f"probe moved more than {100 * setup.get('speed_tolerance', 0):.0f} % during the group.")
    sections = [Section("Runs", paragraphs=paragraphs, tables=[table]),
                Section("Error budget burn-down per tier", figures=figures)]
    provenance = {"policies": ", ".join(setup.get("policies", [])), "machine load (1/5/15 min) at start":
                  setup.get("machine_load_start"), "at end": setup.get("machine_load_end"),
                  "seconds": setup.get("seconds")}
    return Report("Budget governor against baseline policies", summary, sections, provenance)
