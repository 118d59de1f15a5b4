"""One line per recorded change, as the postmortem's "What changed" section prints it (text, HTML, Markdown);
the changes themselves are found in :mod:`causalsre.causal.changes`, which re-exports :func:`describe_change`."""

from __future__ import annotations


def describe_change(change: dict) -> str:
    """One line for a change, as the postmortem's first section prints it."""
    name, kind = change["name"], change["kind"]
    if kind == "setting":
        note = "" if change.get("in_graph", True) else "  (not in the graph: cannot be attributed)"
        note += f"  ({change['binding']})" if change.get("binds") is False else ""
        note += f"  (tie: {change['tie']})" if change.get("tie") else ""
        return f"setting  {name}: {_fmt(change['baseline'])} -> {_fmt(change['incident'])}{note}"
    if kind == "unknown_setting":
        shown = ["unknown" if change[side] is None else _fmt(change[side]) for side in ("baseline", "incident")]
        return f"setting  {name}: {shown[0]} -> {shown[1]}  (recorded in the {change['recorded_in']} only: may have changed)"
    if kind == "server_setting":
        return (f"server   {name}: {_fmt(change['baseline'])} -> {_fmt(change['incident'])}  (from {change['source']}; "
                "not in the graph: a prime suspect the attribution cannot size)")
    if kind == "event":
        what = f" = {change['value']}" if change.get("value") is not None else ""
        return f"event    {change.get('event_kind') or 'event'} {name}{what}"
    if kind == "control" and name == "shed_requests":
        tenants = sorted(set(change["baseline"]) | set(change["incident"]))
        counts = ", ".join(f"{t} {change['baseline'].get(t, 0)} -> {change['incident'].get(t, 0)}" for t in tenants)
        return f"governor shed requests (baseline -> incident): {counts}"
    if kind == "control":
        burn = "" if change.get("short_burn") is None else \
            f", burn {change['short_burn']:.3g} short / {change['long_burn']:.3g} long"
        left = "" if change.get("budget_remaining") is None else f", budget left {change['budget_remaining']:.0%}"
        why = f" (tier {change['tier']}: {change.get('reason')}{burn}{left})" if change.get("tier") else \
            f" ({change.get('reason')})"
        return f"governor {name}{why}: {_fmt(change.get('before'))} -> {_fmt(change.get('after'))}"
    if change.get("not_measured"):
        return f"workload {name}: not measured ({change['not_measured']})"
    mark = "changed" if change.get("significant") else "steady "
    if name == "tenant":
        grew = change.get("largest_rise")
        before, after = change["baseline"].get(grew, 0.0), change["incident"].get(grew, 0.0)
        size = f"share of {grew} {before:.0%} -> {after:.0%}"
    else:
        size = f"{_fmt(change.get('baseline'))} -> {_fmt(change.get('incident'))} {change.get('unit', '')}".rstrip()
    tie = f"  (tie: {change['tie']})" if change.get("tie") else ""
    what = "the rate follows the server's speed" if name == "arrival_rate" else "the gaps follow the server's answers"
    loop = f"  (closed-loop benchmark: {what}, an effect)" if change.get("closed_loop") else ""
    face = (f"  (follows the {change['explained_by']} mix: each tenant's own lengths did not change)"
            if change.get("explained_by") else "")
    return f"workload {name}: {size}  [{mark} p={change.get('p_value', 1.0):.2g}]{tie}{loop}{face}"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "{" + ", ".join(_fmt(v) for v in value) + "}"
    return str(value)
