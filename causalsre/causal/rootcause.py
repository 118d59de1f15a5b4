"""Root-cause ranking for bring-your-own metrics: which node's own behaviour explains the target's anomaly.

1. Robust z-scores of the abnormal rows against the normal rows (median and MAD, widened by the 1-99 %
   range for heavy-tailed columns; mean absolute deviation when the MAD is 0, as for availability at 100 %).
   The abnormal row analysed is the one where the target is most anomalous; if the target's |z| is within
   ``target_threshold`` the answer is "nothing anomalous" (an empty ranking).
2. A linear structural model fitted on normal data (ridge regression of each node on its parents). A
   candidate (an ancestor of the target, or the target) qualifies when it is anomalous itself *and* given
   its parents (|marginal z| and |residual z| above ``threshold``): a caller that is slow only because its
   callee is slow is explained by its parents and does not qualify.
3. Its share of the target's deviation: total effect on the target times its own noise, in target scale
   units (the exact Shapley attribution of the deviation to the noises of a linear model). A candidate must
   account for at least ``MIN_SHARE`` of the deviation and push the target the way it moved.
4. Single-fault footprint: a fault at a candidate also explains the anomalous nodes downstream of it that
   are not candidates themselves. Score = 1 + anomalies explained + share / (1 + share): the candidate that
   explains most observed anomalies ranks first, the share breaks ties. The target ranks last when an
   ancestor qualifies (its leftover residual is then more likely a misfit of the linear model).

No mechanism sampling, so an incident takes well under a second, where DoWhy gcm's counterfactual
``attribute_anomalies`` takes minutes and fails on near-constant columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.errors import UserError

DEFAULT_THRESHOLD = 4.0
DEFAULT_TARGET_THRESHOLD = 2.5
# A root cause must account for at least this share of the target's deviation (in the linear model).
MIN_SHARE = 0.1
RIDGE_ALPHA = 1.0
# The effect of a parent that never moved in the normal data cannot be estimated from it. We assume a unit
# effect in the column's own units, right for metrics of one kind along a call graph (a caller's latency or
# error rate moves with its callee's); pass 0 to ignore such parents instead.
UNESTIMABLE_EFFECT = 1.0
_MAD_TO_SIGMA = 1.4826
_MEAN_ABS_TO_SIGMA = 1.2533
TAIL_QUANTILE = 0.01
_TAIL_TO_SIGMA = 2 * 2.326  # a normal distribution's 1-99 % range is 4.65 sigma


@dataclass(frozen=True, slots=True)
class RootCause:
    node: str
    score: float
    marginal_z: float
    residual_z: float


def robust_scale(values: np.ndarray, tails: bool = True) -> tuple[float, float]:
    """(location, scale): median and MAD; mean absolute deviation when the MAD is 0 (mostly-constant
    columns); a tiny scale for a truly constant column, so any departure from it is extreme."""
    location = float(np.median(values))
    deviation = np.abs(values - location)
    low, high = np.quantile(values, [TAIL_QUANTILE, 1 - TAIL_QUANTILE])
    # The tail term widens the scale of heavy-tailed columns (rare slow calls are normal there).
    scale = max(_MAD_TO_SIGMA * float(np.median(deviation)), float(high - low) / _TAIL_TO_SIGMA if tails else 0.0)
    if scale <= 0:
        scale = _MEAN_ABS_TO_SIGMA * float(np.mean(deviation))
    if scale <= 0:
        scale = 1e-6 * max(abs(location), 1.0)
    return location, scale


def _prepare(normal: pd.DataFrame, abnormal: pd.DataFrame, graph: nx.DiGraph, target: str):
    if target not in graph:
        raise UserError(f"target {target!r} is not a node of the graph", "check --target against the edge list")
    for name, frame in (("normal", normal), ("abnormal", abnormal)):
        if target not in frame.columns:
            raise UserError(f"target {target!r} is not a column of the {name} data")
        if frame.empty:
            raise UserError(f"the {name} data has no rows")
    numeric = [c for c in normal.columns if c in abnormal.columns and c in graph
               and pd.api.types.is_numeric_dtype(normal[c]) and normal[c].notna().any()]
    if target not in numeric:
        raise UserError(f"target {target!r} has no numeric values in the normal data")
    kept = _project(graph, set(numeric))
    candidates = sorted(nx.ancestors(kept, target) | {target})
    fill = normal[numeric].median()
    # A missing value in these exports means "no traffic in the interval": typical, not anomalous.
    return kept, candidates, normal[numeric].fillna(fill), abnormal[numeric].fillna(fill)


def _project(graph: nx.DiGraph, keep: set[str]) -> nx.DiGraph:
    """Drop nodes without data, connecting their causes to their effects (ancestry is preserved)."""
    projected = graph.copy()
    for node in [n for n in nx.topological_sort(graph) if n not in keep]:
        for cause in projected.predecessors(node):
            for effect in projected.successors(node):
                projected.add_edge(cause, effect)
        projected.remove_node(node)
    return projected


@dataclass(frozen=True, slots=True)
class LinearMechanism:
    """node = intercept + coef . parents + noise, fitted by ridge regression on normal data."""

    parents: list[str]
    coef: np.ndarray
    intercept: float
    noise_location: float
    noise_scale: float

    def noise(self, frame: pd.DataFrame, node: str) -> np.ndarray:
        predicted = self.intercept + (frame[self.parents].to_numpy(float) @ self.coef if self.parents else 0.0)
        return frame[node].to_numpy(float) - predicted - self.noise_location


def fit_linear(node: str, parents: list[str], normal: pd.DataFrame) -> LinearMechanism:
    y = normal[node].to_numpy(float)
    coef = np.zeros(len(parents))
    if parents:
        x = normal[parents].to_numpy(float)
        mean, spread = x.mean(axis=0), x.std(axis=0)
        constant = spread == 0  # a parent that never moved in normal data has no estimable effect
        spread[constant] = 1.0
        design = (x - mean) / spread
        gram = design.T @ design + RIDGE_ALPHA * np.eye(len(parents))
        coef = np.linalg.solve(gram, design.T @ (y - y.mean())) / spread
        coef[constant] = UNESTIMABLE_EFFECT
        intercept = float(y.mean() - mean @ coef)
    else:
        intercept = 0.0
    fitted = LinearMechanism(parents, coef, intercept, 0.0, 1.0)
    location, scale = robust_scale(fitted.noise(normal, node))
    return LinearMechanism(parents, coef, intercept, location, scale)


def rank_root_causes(normal: pd.DataFrame, abnormal: pd.DataFrame, graph: nx.DiGraph, target: str,
                     threshold: float = DEFAULT_THRESHOLD,
                     target_threshold: float = DEFAULT_TARGET_THRESHOLD) -> list[RootCause]:
    """Root-cause candidates of the target's anomaly, best first; empty when nothing is anomalous
    (the target's robust z-score is within ``target_threshold``).

    Gate: a candidate must be anomalous itself and unexplained by its parents (``min(|marginal z|,
    |residual z|) > threshold``). Rank: its share of the target's deviation in the linear structural model
    fitted on normal data (total effect on the target times its own noise, in target scale units), which is
    the exact Shapley attribution of the target's deviation to the nodes' noises in a linear model.
    """
    kept, candidates, normal, abnormal = _prepare(normal, abnormal, graph, target)
    marginal = {}
    for node in kept:
        location, scale = robust_scale(normal[node].to_numpy(float))
        marginal[node] = (abnormal[node].to_numpy(float) - location) / scale
    target_z = marginal[target]
    row = int(np.argmax(np.abs(target_z)))
    anomalous = {n for n in kept if abs(marginal[n][row]) > threshold}
    order = list(nx.topological_sort(kept))
    mechanisms = {n: fit_linear(n, sorted(kept.predecessors(n)), normal) for n in order}
    noise = {n: float(mechanisms[n].noise(abnormal.iloc[[row]], n)[0]) for n in order}
    residual_z = {n: noise[n] / mechanisms[n].noise_scale for n in order}
    total_effect = {target: 1.0}
    for node in reversed(order):
        if node != target and node in candidates:
            total_effect[node] = sum(
                mechanisms[child].coef[mechanisms[child].parents.index(node)] * total_effect[child]
                for child in kept.successors(node) if child in total_effect)
    target_scale = robust_scale(normal[target].to_numpy(float))[1]
    direction = 1.0 if target_z[row] >= 0 else -1.0
    qualified = {}
    for node in candidates:
        marginal_z = float(marginal[node][row])
        # The target passed its own (lower) gate already; it still has to be unexplained by its parents.
        marginal_gate = target_threshold if node == target else threshold
        unusual = abs(marginal_z) > marginal_gate and abs(residual_z[node]) > threshold
        share = direction * total_effect[node] * noise[node] / target_scale
        if unusual and share > MIN_SHARE * abs(target_z[row]):
            qualified[node] = (share, marginal_z)
    # A single fault at a candidate explains the anomalies downstream of it, except those at other
    # candidates (which are anomalous on their own). The candidate that explains most observed anomalies
    # ranks first (one fault is likelier than several); its share of the target's deviation breaks ties.
    footprint = (anomalous | {target}) - (set(qualified) - {target})
    scored = {}
    for node, (share, marginal_z) in qualified.items():
        explained = 1 + len(nx.descendants(kept, node) & footprint)
        scored[node] = RootCause(node, explained + share / (1 + share), marginal_z, residual_z[node])
    if abs(target_z[row]) <= target_threshold:
        return []
    # One fault is likelier than two: when an ancestor qualifies, the target's own leftover residual is more
    # likely a misfit of the linear model (effects are attenuated by noise in normal data), so the target
    # ranks last. Ties (equal scores) are broken by name so that the answer is deterministic.
    return sorted(scored.values(), key=lambda c: (c.node == target, -round(c.score, 9), c.node))


def read_table(path) -> pd.DataFrame:
    """A wide table (one column per node) from CSV or Parquet."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist", "pass a CSV or Parquet file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for malformed files
        raise UserError(f"cannot read {path} as a table ({str(exc).splitlines()[0]})") from None


def read_edges(path) -> nx.DiGraph:
    """A ``cause,effect`` CSV edge list (a header row is optional) as a DAG."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise UserError(f"edge list {path} does not exist", "pass a cause,effect CSV file")
    try:
        frame = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"edge list {path} is not a cause,effect CSV ({str(exc).splitlines()[0]})",
                        "write one cause,effect pair per line") from None
    if frame.shape[1] != 2:
        raise UserError(f"edge list {path} has {frame.shape[1]} columns", "write two columns: cause,effect")
    if tuple(frame.iloc[0].str.lower()) == ("cause", "effect"):
        frame = frame.iloc[1:]
    graph = nx.DiGraph()
    graph.add_edges_from(frame.itertuples(index=False, name=None))
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(edge[0] for edge in nx.find_cycle(graph))
        raise UserError(f"edge list {path} has a cycle through {cycle}", "a causal graph must be acyclic")
    return graph
