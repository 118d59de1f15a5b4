"""Plots for reports. Each function takes plain data and returns a :class:`Figure` (no analysis here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # reports are rendered headless
import matplotlib.pyplot as plt  # noqa: E402

from causalsre.report.document import Figure  # noqa: E402

FAMILY_COLOURS = {"batching": "#3b6fd4", "hardware": "#d4623b", "workload": "#3ba55c", "other": "#8a8f98"}


def burn_rate_timeline(times: Sequence, burn_rates: Sequence[float], thresholds: Sequence[tuple[str, float]],
                       *, title: str = "Burn rate") -> Figure:
    """Burn rate over time with the alert thresholds as dashed lines."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot(list(times), list(burn_rates), color="#1d2433", linewidth=1.4, label="burn rate")
    for i, (label, value) in enumerate(thresholds):
        ax.axhline(value, linestyle="--", linewidth=1, color=plt.cm.Reds(0.45 + 0.5 * i / max(len(thresholds), 1)),
                   label=f"{label} ({value:g}x)")
    ax.axhline(1.0, color="#8a8f98", linewidth=0.8, linestyle=":", label="1x (budget lasts the period)")
    ax.set_ylabel("burn rate (x budget)")
    ax.set_title(title)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    fig.autofmt_xdate()
    return Figure.from_matplotlib(fig, f"{title}: error ratio divided by the error budget, with alert thresholds.")


def budget_burndown(times: Sequence, remaining: Sequence[float], *, title: str = "Error budget remaining") -> Figure:
    """Fraction of the error budget left over time (may go below zero)."""
    fig, ax = plt.subplots(figsize=(9, 3))
    values = [100 * r for r in remaining]
    ax.plot(list(times), values, color="#3b6fd4", linewidth=1.6)
    ax.fill_between(list(times), values, 0, where=[v < 0 for v in values], color="#d4623b", alpha=0.3)
    ax.axhline(0, color="#d4623b", linewidth=0.8)
    ax.set_ylabel("budget remaining (%)")
    ax.set_title(title)
    fig.autofmt_xdate()
    return Figure.from_matplotlib(fig, f"{title} (below zero: the SLO is breached for the period).")


def attribution_bars(attributions: Sequence[dict], *, title: str = "What changed the bad-event rate") -> Figure:
    """Horizontal bars per factor, coloured and grouped by family, with confidence intervals."""
    rows = sorted(attributions, key=lambda a: (a.get("family", "other"), -abs(a["contribution"])))
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(rows), 2) + 1.2))
    labels = [f"{a['factor']} ({a.get('family', 'other')})" for a in rows]
    values = [100 * a["contribution"] for a in rows]
    colours = [FAMILY_COLOURS.get(a.get("family", "other"), FAMILY_COLOURS["other"]) for a in rows]
    errors = None
    if all(a.get("ci_low") is not None and a.get("ci_high") is not None for a in rows):
        errors = [[100 * (a["contribution"] - a["ci_low"]) for a in rows],
                  [100 * (a["ci_high"] - a["contribution"]) for a in rows]]
        errors = [[max(e, 0.0) for e in side] for side in errors]
    ax.barh(range(len(rows)), values, xerr=errors, color=colours, capsize=3, error_kw={"linewidth": 1})
    ax.set_yticks(range(len(rows)), labels=labels, fontsize=9)
    ax.axvline(0, color="#1d2433", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("contribution to the change in bad-event rate (percentage points)")
    ax.set_title(title)
    return Figure.from_matplotlib(fig, f"{title}: bars are point estimates, whiskers the intervals.")


def causal_graph(nodes: dict[str, dict], edges: Sequence[tuple[str, str]], *, blamed: Sequence[str] = (),
                 target: str | None = None, title: str = "Causal graph") -> Figure:
    """Draw the graph in layers by role, highlighting the blamed factors and their paths to the target."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    pos = _layered_layout(graph, nodes)
    highlight_edges = set()
    if target is not None and target in graph:
        for source in blamed:
            if source in graph and nx.has_path(graph, source, target):
                for path in nx.all_simple_paths(graph, source, target, cutoff=6):
                    highlight_edges.update(zip(path, path[1:]))
    widest = max(Counter(y for _, y in pos.values()).values(), default=1)
    fig, ax = plt.subplots(figsize=(max(11.0, 0.8 * widest), 8))
    plain = [e for e in graph.edges if e not in highlight_edges]
    nx.draw_networkx_edges(graph, pos, edgelist=plain, edge_color="#c5cbd6", arrows=True, ax=ax, arrowsize=8)
    nx.draw_networkx_edges(graph, pos, edgelist=list(highlight_edges), edge_color="#d4623b", width=2.4,
                           arrows=True, ax=ax, arrowsize=14)
    colours = [FAMILY_COLOURS.get(str(nodes[n].get("family", "other")), FAMILY_COLOURS["other"]) for n in graph]
    sizes = [900 if n in blamed else 420 for n in graph]
    nx.draw_networkx_nodes(graph, pos, node_color=colours, node_size=sizes, ax=ax,
                           edgecolors=["#1d2433" if n in blamed else "white" for n in graph], linewidths=2)
    # Labels below the nodes and slanted, so the long factor names of a wide layer do not overlap.
    for name, (x, y) in pos.items():
        ax.text(x, y - 0.12, name, fontsize=7.5, rotation=35, ha="right", va="top",
                fontweight="bold" if name in blamed else "normal")
    ax.margins(x=0.06, y=0.2)
    ax.set_title(title)
    ax.axis("off")
    names = ", ".join(blamed) if blamed else "none"
    return Figure.from_matplotlib(fig, f"{title}. Blamed factors (bold outline) and their paths to "
                                       f"{target or 'the outcome'} in red: {names}.")


ROLE_LAYER = {"knob": 0, "hardware": 0, "workload": 0, "engine_state": 1, "mediator": 1, "outcome": 2}


def _layered_layout(graph, nodes: dict[str, dict]) -> dict[str, tuple[float, float]]:
    """Causes at the bottom, engine state in the middle, outcomes on top; each layer spread evenly."""
    layers: dict[int, list[str]] = {}
    for name in graph:
        layer = ROLE_LAYER.get(str(nodes.get(name, {}).get("role", "")), 1)
        layers.setdefault(layer, []).append(name)
    widest = max((len(v) for v in layers.values()), default=1)
    pos = {}
    for layer, names in layers.items():
        names.sort(key=lambda n: (str(nodes.get(n, {}).get("family", "")), n))
        step = widest / max(len(names), 1)
        for i, name in enumerate(names):
            pos[name] = ((i + 0.5) * step, float(layer))
    return pos
