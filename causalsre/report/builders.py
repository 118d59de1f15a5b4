"""Report sections for each command's result (the JSON-ready dicts the commands print with --json).

Builders only format: numbers come from the analysis, words from these templates. Every summary sentence
is written for a reader who has not seen the tool before (a manager reading a postmortem).
"""

from __future__ import annotations

from typing import Any

from causalsre.report import figures, plots
from causalsre.report.document import Section, Table


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}x"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "never at this rate"
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} seconds"


# --- SLO -----------------------------------------------------------------------------------------------

def slo_summary(report: dict) -> str:
    firing = [a for a in report.get("alerts", []) if a.get("firing")]
    text = (f"SLO {report['name']} (objective {pct(report['objective'], 2)}): {report['bad_events']} of "
            f"{report['events']} requests were bad, which used {pct(report['budget_consumed'])} of the error "
            f"budget (remaining {pct(report['budget_remaining'])}); the current burn rate is "
            f"{times(report.get('burn_rate'))}.")
    exhaustion = report.get("time_to_exhaustion_s")
    if exhaustion is not None and (report.get("budget_remaining") or 0) > 0:
        text += f" At this rate the remaining budget lasts {_duration(exhaustion)}."
    if firing:
        text += " Alerts firing: " + "; ".join(
            f"{a['severity']} {a['threshold']:.3g}x ({a['long_window']}/{a['short_window']})" for a in firing) + "."
    else:
        text += " No alert is firing."
    return text


def slo_section(reports: list[dict], timelines: list[tuple[Any, Any]] | None = None,
                alert_windows: Any = None) -> Section:
    rows = [[r["name"], pct(r["objective"], 2), r["events"], r["bad_events"], pct(r.get("sli"), 2),
             pct(r["budget_consumed"]), pct(r["budget_remaining"]), times(r.get("burn_rate"))] for r in reports]
    section = Section("SLO and error budget", paragraphs=[slo_summary(r) for r in reports],
                      tables=[Table(["SLO", "objective", "events", "bad", "SLI", "budget used", "remaining",
                                     "burn rate"], rows)])
    for report in reports:
        alerts = report.get("alerts", [])
        if alerts:
            section.tables.append(Table(
                ["severity", "long window", "short window", "threshold", "long burn", "short burn", "firing"],
                [[a["severity"], a["long_window"], a["short_window"], a["threshold"], a.get("long_burn_rate"),
                  a.get("short_burn_rate"), "yes" if a.get("firing") else "no"] for a in alerts],
                caption=f"{report['name']}: multiwindow multi-burn-rate alerts (both windows must exceed the "
                        "threshold)"))
    if timelines:
        section.figures.append(figures.slo_timelines(timelines, alert_windows))
    return section


# --- postmortem ----------------------------------------------------------------------------------------

def postmortem_summary(result: dict) -> str:
    base, inc = result["burn"]["baseline"], result["burn"]["incident"]
    text = (f"The bad-event rate went from {pct(base['bad_rate'])} in the baseline ({result['n_baseline']} "
            f"requests) to {pct(inc['bad_rate'])} in the incident ({result['n_incident']} requests)")
    if "burn_rate" in inc:
        text += f", a burn rate of {times(inc['burn_rate'])} against {times(base.get('burn_rate'))} before"
    text += "."
    if result.get("nothing_to_attribute"):
        return text + f" Nothing to attribute: {result['nothing_to_attribute']}."
    attributions = result.get("attributions", [])
    # Outcome-family entries (queue_s, ttft_s, ...) are latency components whose behaviour moved beyond what
    # their measured causes explain: a symptom with an unmeasured cause, not a cause to name after the knob.
    # A row without a role (results saved before roles existed): outcome-family rows were the unexplained ones.
    role = lambda a: a.get("role") or ("unexplained" if a["family"] == "outcome" else "cause")  # noqa: E731
    causes = [a for a in attributions if role(a) == "cause" and a["family"] != "other" and a["contribution"] > 0]
    unexplained = [a for a in attributions if role(a) == "unexplained" and a["contribution"] > 0.01]
    changed = [c for c in result.get("changes", []) if c["kind"] == "setting"]
    if changed:
        text += " Recorded settings that changed: " + ", ".join(
            f"{c['name']} {c['baseline']} -> {c['incident']}" for c in changed) + "."
    if causes and causes[0].get("verified_share") is not None:
        causes = sorted(causes, key=lambda a: -a["verified_share"])
    if result.get("cannot_tell"):   # the change may be chance: no cause is named, whatever the split says
        return text + f" No cause can be named: {result['cannot_tell']}."
    if result.get("burn_fell"):     # an improvement: nothing burned, so no cause of a burn is named
        return text + f" No burn to blame: {result['burn_fell']}."
    if causes:
        top = causes[0]
        text += (f" The largest cause is {top['factor']} ({top['family']}), which accounts for "
                 f"{100 * top['contribution']:+.1f} percentage points (interval {100 * top['ci_low']:+.1f} to "
                 f"{100 * top['ci_high']:+.1f})")
        others = [a for a in causes[1:] if a["ci_low"] > 0][:2]   # only what the interval says is real
        if others:
            text += "; then " + ", ".join(f"{a['factor']} ({100 * a['contribution']:+.1f} points)" for a in others)
        text += "."
    if unexplained:
        top = unexplained[0]
        text += (f" {top['factor']} also behaved differently given its measured causes ("
                 f"{100 * top['contribution']:+.1f} points): a cause the graph does not measure, or a misfit.")
    return text


# A window that burned less than its baseline: what the contributions then mean (a postmortem reader expects a burn).
IMPROVEMENT = ("the incident burned less than the baseline: the contributions explain an improvement, not a burn "
               "(a negative contribution is a factor that lowered the bad-event rate)")


def postmortem_sections(result: dict, graph: Any = None) -> list[Section]:
    rows = [[a["factor"], a["family"], a.get("kind", ""), 100 * a["contribution"], 100 * a["ci_low"],
             100 * a["ci_high"]] for a in result.get("attributions", [])]
    families = [[f["family"], 100 * f["contribution"], 100 * f["ci_low"], 100 * f["ci_high"]]
                for f in result.get("families", [])]
    section = Section("Why the budget burned (attribution)", paragraphs=[postmortem_summary(result),
                      f"Method: {result.get('method', '')}. Contributions are percentage points of the change "
                      f"in the bad-event rate ({100 * result.get('total_change', 0.0):+.1f} points in all) and "
                      "sum to it; intervals are 95 % bootstrap intervals over request pairs."
                      + (f" {IMPROVEMENT[0].upper()}{IMPROVEMENT[1:]}." if result.get("total_change", 0.0) < 0 else "")])
    if rows:
        section.tables.append(Table(["factor", "family", "change", "points", "low", "high"], rows,
                                    caption="Contribution of each factor"))
        section.tables.append(Table(["family", "points", "low", "high"], families, caption="By family"))
        shown = [a for a in result["attributions"] if a["family"] != "other" and abs(a["contribution"]) > 1e-9]
        section.figures.append(plots.attribution_bars(shown or result["attributions"]))
    sections = [section]
    if result.get("verification"):
        sections.append(verification_section(result["verification"]))
    if result.get("changes"):
        from causalsre.causal.changes import describe_change

        sections.insert(0, Section("What changed", paragraphs=[
            "Every recorded change between the baseline and the incident: settings (run_settings), operator "
            "events, then workload shifts measured from the requests with a test of significance (level 0.01)."],
            tables=[Table(["change"], [[describe_change(c)] for c in result["changes"]])]))
    bayes = result.get("bayes_attribution")
    if bayes:
        sections.append(Section("Beside it: the Bayesian burn model's attribution", paragraphs=[
            "Each factor's contribution is the drop in the incident's expected burn rate were that factor "
            "distributed as in the baseline, per posterior draw (median and 90 % credible interval, burn-rate "
            "units). The parts need not add up: 'remainder' is what no factor accounts for, mostly the two "
            "windows' own intercepts."],
            tables=[Table(["factor", "burn change", "low (5 %)", "high (95 %)"],
                          [[r["factor"], r["burn_change"], r["low"], r["high"]] for r in bayes["rows"]])],
            warnings=list(bayes["diagnostics"].get("warnings") or [])))
    if graph is not None:
        blamed = [a["factor"] for a in result.get("attributions", [])
                  if a["family"] != "other" and a["ci_low"] > 0][:3]
        nodes = {name: {"role": node.role, "family": node.family} for name, node in graph.nodes.items()}
        edges = [(e.cause, e.effect) for e in graph.edges]
        sections.append(Section("The causal graph", paragraphs=[
            "Nodes are coloured by family; the blamed factors have a bold outline and their paths to the "
            "bad-event indicator are drawn in red."],
            figures=[plots.causal_graph(nodes, edges, blamed=blamed, target=graph.target)]))
    anomalous = result.get("anomalous_requests", [])
    if anomalous:
        sections.append(Section("Most anomalous incident requests", tables=[Table(
            ["run", "request", "bad", "anomaly z", "main causes"],
            [[r["run_id"], r["request_id"], "yes" if r["is_bad"] else "no", r.get("anomaly_z"),
              ", ".join(f"{c['factor']} {100 * c['contribution']:+.0f}" for c in r.get("attributions", [])[:3])]
             for r in anomalous])]))
    return sections


def verification_section(verification: dict) -> Section:
    """``postmortem --verify``: the incident replayed once per named cause with that cause reverted, the share
    of the burn each revert removed beside the estimate, the causes reverted together when no single one
    removed the burn, and the replay machine's speed against the recording's (a warning when it differs)."""
    control = verification["control"]
    rows = [[c["factor"], _share(c.get("estimated_share")), _share(c.get("verified_share")),
             pct(c["reverted_bad_rate"]) if c.get("reverted_bad_rate") is not None else "",
             c.get("requests", ""), "yes" if c.get("disagrees") else ("" if c.get("verified_share") is not None
                                                                   else f"not verified: {c.get('why')}")]
            for c in verification.get("causes", [])]
    joint = verification.get("joint")
    if joint:
        rows.append([" + ".join(joint["factors"]) + " (together)", _share(joint["sum_of_single_shares"])
                     + " (sum of single)", _share(joint["verified_share"]), pct(joint["reverted_bad_rate"]),
                     joint.get("requests", ""), joint.get("why") or ""])
    ratio = verification.get("speed_ratio")
    text = (f"The incident replayed unchanged burned {pct(control['bad_rate'])} bad against "
            f"{pct(verification['baseline_bad_rate'])} in the recorded baseline; each row replays it with that "
            "cause reverted to its baseline value and says how much of the burn the revert removed."
            + (f" The replay machine ran the speed probe at {ratio:.2f}x the recording's speed." if ratio else "")
            + ("" if verification.get("ranked_by_replay", True) else
               " The causes keep their estimated order: the replay ran at another speed than the recording."))
    warnings = [verification["warning"]] if verification.get("warning") else []
    return Section("Verified by replay", paragraphs=[text], warnings=warnings, tables=[Table(
        ["cause", "estimated share", "verified share", "bad rate reverted", "requests", "disagrees / why"],
        rows, caption="Share of the burn each revert removed (verified) beside the attribution's estimate")])


def _share(value) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


# --- what-if -------------------------------------------------------------------------------------------

def whatif_summary(result: dict) -> str:
    change = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in result["intervention"].items())
    parts = [f"{name} {times(p['burn_rate'])} (90 % interval {times(p['low'])} to {times(p['high'])})"
             for name, p in result["predicted"].items()]
    text = (f"Setting {change} in window {result['window']} is predicted to change the burn rate from "
            f"{times(result['observed'])} to " + " / ".join(parts) + ".")
    verified = result.get("verified")
    if verified:
        text += (f" Replaying the window's workload with this change in the harness measured "
                 f"{times(verified['burn_rate'])} (bad rate {pct(verified['bad_rate'])}).")
        if result.get("verified_speed_ratio") is not None:
            text += f" The replay machine ran the speed probe at {result['verified_speed_ratio']:.2f}x the recording's speed."
    return text


def whatif_section(result: dict) -> Section:
    verified = result.get("verified") or {}
    rows = [[name, result["observed"], p["burn_rate"], p["low"], p["high"], p.get("bad_rate"),
             verified.get("burn_rate"), _covers(p, verified)] for name, p in result["predicted"].items()]
    section = Section("What if: the intervention", paragraphs=[whatif_summary(result)],
                      tables=[Table(["method", "observed burn", "predicted burn", "low (5 %)", "high (95 %)",
                                     "predicted bad rate", "verified burn", "interval covers verified"], rows)],
                      warnings=list(result.get("warnings") or []))
    latency = result.get("latency")
    if latency:
        section.tables.append(Table(
            ["quantile", "observed (s)", "predicted (s)", "low (5 %)", "high (95 %)", "replay (s)"],
            [[q, (latency["observed"] or {}).get(q), p["value"], p["low"], p["high"], (latency["verified"] or {}).get(q)]
             for q, p in latency["predicted"].items()],
            caption=f"{latency['metric']} of the served requests under the intervention (log-latency model)"))
    return section


def _covers(prediction: dict, verified: dict) -> str:
    if not verified:
        return "-"
    return "yes" if prediction["low"] <= verified["burn_rate"] <= prediction["high"] else "no"


# --- diagnostics ---------------------------------------------------------------------------------------

def diagnostics_section(diagnostics: dict | None) -> Section | None:
    if not diagnostics:
        return None
    rows = [["sampler", diagnostics.get("sampler")], ["max r_hat", diagnostics.get("max_r_hat")],
            ["min bulk ESS", diagnostics.get("min_ess_bulk")], ["min tail ESS", diagnostics.get("min_ess_tail")],
            ["divergences", diagnostics.get("divergences")]]
    return Section("Model diagnostics", paragraphs=[
        "r_hat should be below 1.01, effective sample sizes above 400 and divergences zero; otherwise treat "
        "the Bayesian intervals with care."], tables=[Table(["diagnostic", "value"], rows)],
        warnings=list(diagnostics.get("warnings") or []))
