"""Testing the graph against data and learning one from data.

``check`` tests the local Markov conditions the graph implies (every node is independent of its
non-descendants given its parents) with a rank partial-correlation test (Fisher z on Spearman-ranked data),
so hundreds of tests finish in seconds; a failed test names a dependence the graph does not explain.
``learn`` runs pgmpy's PC (conditional-independence search) or hill climbing with a Gaussian BIC score,
with the tier rule as forbidden edges, and compares the result with the spec. (Drawing the graph:
``causalsre.report.plots.draw_graph``.)
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
from scipy import stats

from causalsre.causal.graph import TIER, GraphSpec

MAX_TESTS = 400


def numeric_nodes(table: pd.DataFrame, graph: GraphSpec) -> pd.DataFrame:
    """Graph-node columns as numbers (categoricals as codes); columns constant in the data are dropped
    (nothing about them can be tested or learned)."""
    out = {}
    for node in graph.nodes:
        if node not in table.columns:
            continue
        column = table[node]
        if column.dtype == object or graph.nodes[node].type == "categorical":
            column = column.astype("category").cat.codes.astype(float)
        column = column.astype(float)
        if column.nunique(dropna=True) > 1:
            out[node] = column.fillna(column.median())
    return pd.DataFrame(out)


def partial_correlation_test(data: pd.DataFrame, x: str, y: str, given: list[str]) -> tuple[float, float]:
    """(partial Spearman correlation, p-value) of x and y given ``given``."""
    ranked = data[[x, y, *given]].rank().to_numpy(float)
    ranked = (ranked - ranked.mean(axis=0)) / np.where(ranked.std(axis=0) > 0, ranked.std(axis=0), 1.0)
    if given:
        z = np.column_stack([np.ones(len(ranked)), ranked[:, 2:]])
        beta, *_ = np.linalg.lstsq(z, ranked[:, :2], rcond=None)
        resid = ranked[:, :2] - z @ beta
    else:
        resid = ranked[:, :2]
    r = float(np.corrcoef(resid[:, 0], resid[:, 1])[0, 1]) if resid[:, 0].std() > 0 and resid[:, 1].std() > 0 else 0.0
    r = float(np.clip(r, -0.999999, 0.999999))
    dof = len(ranked) - len(given) - 3
    z_stat = np.sqrt(max(dof, 1)) * np.arctanh(r)
    return r, float(2 * stats.norm.sf(abs(z_stat)))


def check_graph(table: pd.DataFrame, graph: GraphSpec, alpha: float = 0.01, min_effect: float = 0.1) -> dict:
    """Test every implied local independence; returns the tests and those that fail (Bonferroni)."""
    data = numeric_nodes(table, graph)
    present = graph.restricted_to(list(data.columns))
    nx_graph = present.to_networkx()
    tests, seen = [], set()
    for node in present.topological_order():
        parents = sorted(nx_graph.predecessors(node))
        non_descendants = set(nx_graph) - nx.descendants(nx_graph, node) - {node} - set(parents)
        for other in sorted(non_descendants):
            if frozenset((node, other)) not in seen:  # one test per pair is enough
                seen.add(frozenset((node, other)))
                tests.append((node, other, parents))
    tests = tests[:MAX_TESTS]
    results = []
    for node, other, parents in tests:
        r, p = partial_correlation_test(data, node, other, parents)
        results.append({"x": node, "y": other, "given": parents, "partial_corr": r, "p_value": p})
    threshold = alpha / max(len(results), 1)
    failed = [t for t in results if t["p_value"] < threshold and abs(t["partial_corr"]) >= min_effect]
    failed.sort(key=lambda t: (t["p_value"], t["x"], t["y"]))
    return {"rows": len(data), "nodes_tested": list(data.columns), "tests": len(results), "alpha": alpha,
            "bonferroni_threshold": threshold, "failed": failed, "skipped_constant": sorted(
                n for n in graph.nodes if n in table.columns and n not in data.columns)}


def forbidden_edges(graph: GraphSpec, nodes: list[str]) -> list[tuple[str, str]]:
    """Tier rule: nothing causes a knob/hardware/workload node except its own tier; outcomes cause no state."""
    return [(a, b) for a in nodes for b in nodes
            if a != b and TIER[graph.nodes[a].role] > TIER[graph.nodes[b].role]]


def learn_graph(table: pd.DataFrame, graph: GraphSpec, method: str = "pc", max_rows: int = 5000,
                seed: int = 0) -> dict:
    """Learn a structure with pgmpy under the tier constraints and diff it against the spec."""
    from pgmpy.causal_discovery import PC, ExpertKnowledge, HillClimbSearch  # pgmpy.estimators' go in pgmpy 1.3

    data = numeric_nodes(table, graph)
    if len(data) > max_rows:
        data = data.sample(max_rows, random_state=seed)
    nodes = list(data.columns)
    knowledge = ExpertKnowledge(forbidden_edges=forbidden_edges(graph, nodes))
    if method == "pc":
        learned = PC(variant="stable", ci_test="pearsonr", max_cond_vars=3, return_type="pdag",
                     expert_knowledge=knowledge, enforce_expert_knowledge=True,
                     show_progress=False, n_jobs=1).fit(data).causal_graph_
        directed = set(learned.directed_edges)
        undirected = {tuple(sorted(e)) for e in learned.undirected_edges}
    else:
        learned = HillClimbSearch(scoring_method="bic-g", expert_knowledge=knowledge, max_indegree=4,
                                  return_type="dag", show_progress=False).fit(data).causal_graph_
        directed, undirected = set(learned.edges()), set()
    spec_edges = {(e.cause, e.effect) for e in graph.restricted_to(nodes).edges}
    found = directed | {(a, b) for a, b in undirected} | {(b, a) for a, b in undirected}
    return {"method": method, "rows": len(data), "nodes": nodes,
            "in_both": sorted(spec_edges & found),
            "only_in_data": sorted(directed - spec_edges) + [tuple(e) for e in sorted(undirected)
                                                              if e not in spec_edges and e[::-1] not in spec_edges],
            "only_in_spec": sorted(e for e in spec_edges if e not in found),
            "undirected": sorted(undirected)}
