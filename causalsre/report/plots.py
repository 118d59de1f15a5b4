"""Plots of attributions and causal graphs. Each ``*_figure`` takes plain data and returns a matplotlib
``Figure`` (for notebooks and ``.plot()``); the wrappers without the suffix return the report's PNG
:class:`~causalsre.report.document.Figure` with its caption. No analysis here, and no pyplot (see palette.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from causalsre.report.document import Figure
from causalsre.report.palette import GRID, INK, family_colour, new_figure, save_figure


def attribution_figure(attributions: Sequence[dict], *, title: str = "What changed the bad-event rate"):
    """Horizontal bars per factor, coloured and grouped by family, with confidence intervals."""
    rows = sorted(attributions, key=lambda a: (a.get("family", "other"), -abs(a["contribution"])))
    fig, ax = new_figure(8, 0.45 * max(len(rows), 2) + 1.2)
    labels = [f"{a['factor']} ({a.get('family', 'other')})" for a in rows]
    values = [100 * a["contribution"] for a in rows]
    errors = None
    if all(a.get("ci_low") is not None and a.get("ci_high") is not None for a in rows):
        errors = [[max(100 * (a["contribution"] - a["ci_low"]), 0.0) for a in rows],
                  [max(100 * (a["ci_high"] - a["contribution"]), 0.0) for a in rows]]
    ax.barh(range(len(rows)), values, xerr=errors, color=[family_colour(a.get("family", "other")) for a in rows],
            capsize=3, error_kw={"linewidth": 1})
    ax.set_yticks(range(len(rows)), labels=labels, fontsize=9)
    ax.axvline(0, color=INK, linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("contribution to the change in bad-event rate (percentage points)")
    ax.set_title(title)
    return fig


def attribution_bars(attributions: Sequence[dict], *, title: str = "What changed the bad-event rate") -> Figure:
    return Figure.from_matplotlib(attribution_figure(attributions, title=title),
                                  f"{title}: bars are point estimates, whiskers the intervals.")


ROLE_LAYER = {"knob": 0, "hardware": 0, "workload": 0, "engine_state": 1, "mediator": 1, "outcome": 2}


def causal_graph_figure(nodes: dict[str, dict], edges: Sequence[tuple[str, str]], *, blamed: Sequence[str] = (),
                        target: str | None = None, title: str = "Causal graph"):
    """The graph in layers by role (causes at the bottom), the blamed factors and their paths to the target
    highlighted."""
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
    fig, ax = new_figure(max(11.0, 0.8 * widest), 8)
    plain = [e for e in graph.edges if e not in highlight_edges]
    nx.draw_networkx_edges(graph, pos, edgelist=plain, edge_color=GRID, arrows=True, ax=ax, arrowsize=8)
    nx.draw_networkx_edges(graph, pos, edgelist=list(highlight_edges), edge_color=family_colour("hardware"),
                           width=2.4, arrows=True, ax=ax, arrowsize=14)
    colours = [family_colour(nodes[n].get("family", "other")) for n in graph]
    sizes = [900 if n in blamed else 420 for n in graph]
    nx.draw_networkx_nodes(graph, pos, node_color=colours, node_size=sizes, ax=ax,
                           edgecolors=[INK if n in blamed else "white" for n in graph], linewidths=2)
    # Labels below the nodes and slanted, so the long factor names of a wide layer do not overlap.
    for name, (x, y) in pos.items():
        ax.text(x, y - 0.12, name, fontsize=7.5, rotation=35, ha="right", va="top",
                fontweight="bold" if name in blamed else "normal")
    ax.margins(x=0.06, y=0.2)
    ax.set_title(title)
    ax.axis("off")
    return fig


def causal_graph(nodes: dict[str, dict], edges: Sequence[tuple[str, str]], *, blamed: Sequence[str] = (),
                 target: str | None = None, title: str = "Causal graph") -> Figure:
    fig = causal_graph_figure(nodes, edges, blamed=blamed, target=target, title=title)
    names = ", ".join(blamed) if blamed else "none"
    return Figure.from_matplotlib(fig, f"{title}. Blamed factors (bold outline) and their paths to "
                                       f"{target or 'the outcome'} in red: {names}.")


def graph_spec_figure(graph: Any):
    """A causal graph spec (``causalsre.causal.GraphSpec``) drawn like the report's graph, coloured by family."""
    nodes = {name: {"role": node.role, "family": node.family} for name, node in graph.nodes.items()}
    edges = [(e.cause, e.effect) for e in graph.edges]
    return causal_graph_figure(nodes, edges, title=f"causal graph {graph.source} (colour: family; causes at the "
                                                  "bottom, outcomes on top)")


def draw_graph(graph: Any, out_path: str | Path) -> Path:
    """``causalsre graph show``: write the graph spec as an image."""
    return save_figure(graph_spec_figure(graph), out_path, dpi=120)


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
