"""Root-cause ranking for bring-your-own metrics: which node's own behaviour explains the target's anomaly.

1. Robust z-scores of the abnormal rows against the normal rows (median and MAD, widened by the 1-99 %
   range for heavy-tailed columns; mean absolute deviation when the MAD is 0, as for availability at 100 %).
   The abnormal row analysed is the one where the target is most anomalous; if the target's |z| is within
   ``target_threshold`` the answer is "nothing anomalous" (an empty ranking).
2. A linear structural model fitted on normal data (ridge regression of each node on its parents). A
   candidate (an ancestor of the target, or the target) qualifies when it is anomalous itself *and* given
   its parents (|marginal z| and |residual z| above ``threshold``): a caller that is slow only because its
   callee is slow is explained by its parents and does not qualify; nor does one whose parents' predicted
   effect accounts for more than 1 - ``unexplained`` of its deviation (in raw units: scale-free), nor, with
   ``reach``, one that does not reach the target through callers deviating the same way along edges with a
   positive fitted effect.
3. Its share of the target's deviation: total effect on the target times its own noise, in target scale
   units (the exact Shapley attribution of the deviation to the noises of a linear model). A candidate must
   account for at least ``MIN_SHARE`` of the deviation and push the target the way it moved.
4. Single-fault footprint: a fault at a candidate also explains the anomalous nodes downstream of it that
   are not candidates themselves. Score = 1 + anomalies explained + share / (1 + share): the candidate that
   explains most observed anomalies ranks first, the share breaks ties. The target ranks last when an
   ancestor qualifies (its leftover residual is then more likely a misfit of the linear model).

No mechanism sampling, so an incident takes well under a second, where DoWhy gcm's counterfactual
``attribute_anomalies`` takes minutes and fails on near-constant columns. The work is near-linear in the
graph's size (one consolidated float matrix, descendant sets as bitsets); graphs are limited to
:data:`MAX_GRAPH_NODES` nodes and :data:`MAX_GRAPH_EDGES` edges, and every node column must be numeric.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.causal.rootcause_input import (  # noqa: F401  (read_table/read_edges: the public readers)
    MAX_GRAPH_EDGES, MAX_GRAPH_NODES, check_graph_size, check_threshold, descendant_bits, node_bits, numeric_matrix,
    project_graph, read_edges, read_table,
)
from causalsre.causal.robust import TAIL_QUANTILE, robust_scale, robust_scales  # noqa: F401  (re-exported)
from causalsre.causal.rootcause_linear import (  # noqa: F401  (re-exported)
    RIDGE_ALPHA, UNESTIMABLE_EFFECT, LinearMechanism, fit_linear, fit_mechanisms,
)
from causalsre.errors import UserError

DEFAULT_THRESHOLD = 3.0
DEFAULT_TARGET_THRESHOLD = 2.5
# A root cause must account for at least this share of the target's deviation (in the linear model).
MIN_SHARE = 0.02
# A root cause's own residual must be at least this share of its deviation (0: no such gate), and it must
# reach the target through callers deviating the same way (REACH). Chosen by leave-one-out
# (docs/evaluation.md).
UNEXPLAINED = 0.6
REACH = True
# An external dependency (a node without parents in the graph: it calls nothing inside the system) must go
# beyond the most extreme gate statistic its own normal data reached: a heavy-tailed remote call whose
# spikes are normal is not a culprit for a spike of the usual size (docs/evaluation.md).
BEYOND_NORMAL = False  # available, not chosen: leave-one-out does not pick it (docs/evaluation.md)
@dataclass(frozen=True, slots=True)
class RootCause:
    node: str
    score: float
    marginal_z: float
    residual_z: float


def _prepare(normal: pd.DataFrame, columns, graph: nx.DiGraph, target: str):
    """The part of the work that depends on the normal data only (and on which columns the abnormal data
    has), so that many abnormal windows or settings can share one fit (:class:`RootCauseModel`)."""
    check_graph_size(graph.number_of_nodes(), graph.number_of_edges(), "the graph")
    if target not in graph:
        raise UserError(f"target {target!r} is not a node of the graph", "check --target against the edge list")
    if target not in normal.columns:
        raise UserError(f"target {target!r} is not a column of the normal data", "give --target one of its columns")
    if normal.empty:
        raise UserError("the normal data has no rows", "give a table with rows under its header")
    columns = set(columns)
    shared = [c for c in normal.columns if c in columns and c in graph]
    normal_matrix = numeric_matrix(normal, shared, "normal")
    has_data = ~np.isnan(normal_matrix).all(axis=0)
    numeric = [c for c, keep in zip(shared, has_data) if keep]
    if target not in numeric:
        raise UserError(f"target {target!r} has no numeric values in the normal data",
                        "the target column must hold numbers")
    kept = project_graph(graph, set(numeric))
    candidates = sorted(nx.ancestors(kept, target) | {target})
    normal_matrix = normal_matrix[:, has_data]
    # A missing value in these exports means "no traffic in the interval": typical, not anomalous. Each
    # table becomes name -> column of one float matrix, so a node's parents cost O(parents), not O(columns).
    fill = np.nanmedian(normal_matrix, axis=0)
    return kept, candidates, numeric, fill, _columns(normal_matrix, fill, numeric)


def _columns(matrix: np.ndarray, fill: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    matrix = np.where(np.isnan(matrix), fill, matrix)
    return {name: matrix[:, i] for i, name in enumerate(names)}


def rank_root_causes(normal: pd.DataFrame, abnormal: pd.DataFrame, graph: nx.DiGraph, target: str,
                     threshold: float = DEFAULT_THRESHOLD, target_threshold: float = DEFAULT_TARGET_THRESHOLD,
                     min_share: float = MIN_SHARE, footprint: bool = True, unexplained: float = UNEXPLAINED,
                     reach: bool = REACH, beyond_normal: bool = BEYOND_NORMAL) -> list[RootCause]:
    """Root-cause candidates of the target's anomaly, best first; empty when nothing is anomalous
    (the target's robust z-score is within ``target_threshold``).

    Gate: a candidate must be anomalous itself and unexplained by its parents (``min(|marginal z|,
    |residual z|) > threshold``). Rank: its share of the target's deviation in the linear structural model
    fitted on normal data (total effect on the target times its own noise, in target scale units), which is
    the exact Shapley attribution of the target's deviation to the nodes' noises in a linear model; with
    ``footprint`` the candidate explaining most anomalous nodes below it ranks first. The defaults are the
    settings leave-one-out picks on the PetShop train incidents (docs/evaluation.md).
    """
    check_threshold(threshold), check_threshold(target_threshold, "target_threshold")  # before any work
    model = RootCauseModel.fit(normal, graph, target, abnormal.columns)
    return model.rank(abnormal, threshold, target_threshold, min_share, footprint, unexplained, reach, beyond_normal)


@dataclass(frozen=True, slots=True)
class Window:
    """One abnormal window at the row where the target is most anomalous: node -> marginal z, noise (the
    residual given its parents, raw units) and deviation from its normal location (raw units)."""

    row: int
    marginal: dict
    noise: dict
    deviation: dict


@dataclass(slots=True)
class RootCauseModel:
    """The normal-data fit of :func:`rank_root_causes`, reusable over abnormal windows and settings."""

    graph: nx.DiGraph
    target: str
    candidates: list[str]
    numeric: list[str]
    fill: np.ndarray
    order: list[str]
    locations: np.ndarray
    scales: np.ndarray
    mechanisms: dict[str, LinearMechanism]
    total_effect: dict[str, float]
    below: dict[str, int]
    normal_extreme: dict[str, float]  # parentless node -> max over normal rows of min(|marginal z|, |residual z|)

    @classmethod
    def fit(cls, normal: pd.DataFrame, graph: nx.DiGraph, target: str, columns=None) -> "RootCauseModel":
        kept, candidates, numeric, fill, table = _prepare(normal, normal.columns if columns is None else columns,
                                                          graph, target)
        order = list(nx.topological_sort(kept))
        locations, scales = robust_scales(np.column_stack([table[n] for n in order]))
        mechanisms = fit_mechanisms(kept, order, table)
        total_effect = {target: 1.0}
        is_candidate = set(candidates)
        for node in reversed(order):
            if node != target and node in is_candidate:
                total_effect[node] = sum(
                    mechanisms[child].coef[mechanisms[child].parents.index(node)] * total_effect[child]
                    for child in kept.successors(node) if child in total_effect)
        extreme = {}
        for i, node in enumerate(order):
            if kept.in_degree(node) == 0:  # no parent: its residual is its own deviation
                z = np.abs(table[node] - locations[i]) / scales[i]
                extreme[node] = float(np.max(np.minimum(z, np.abs(mechanisms[node].noise(table, node))
                                                        / mechanisms[node].noise_scale)))
        return cls(kept, target, candidates, numeric, fill, order, locations, scales, mechanisms, total_effect,
                   descendant_bits(kept, order), extreme)

    def rank(self, abnormal: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD,
             target_threshold: float = DEFAULT_TARGET_THRESHOLD, min_share: float = MIN_SHARE,
             footprint: bool = True, unexplained: float = UNEXPLAINED, reach: bool = REACH,
             beyond_normal: bool = BEYOND_NORMAL) -> list[RootCause]:
        return self.rank_window(self.window(abnormal), threshold, target_threshold, min_share, footprint,
                                unexplained, reach, beyond_normal)

    def window(self, abnormal: pd.DataFrame) -> "Window":
        """The part of :meth:`rank` that depends on the abnormal rows only, shared by every setting."""
        target, order = self.target, self.order
        if target not in abnormal.columns:
            raise UserError(f"target {target!r} is not a column of the abnormal data",
                            "give the abnormal table the normal table's columns")
        if abnormal.empty:
            raise UserError("the abnormal data has no rows", "give a table with rows under its header")
        missing = [c for c in self.numeric if c not in abnormal.columns]
        if missing:
            raise UserError(f"the abnormal data lacks {len(missing)} fitted columns, e.g. {missing[0]!r}",
                            "give the abnormal table the normal table's columns")
        table = _columns(numeric_matrix(abnormal, self.numeric, "abnormal"), self.fill, self.numeric)
        marginal = {n: (table[n] - self.locations[i]) / self.scales[i] for i, n in enumerate(order)}
        row = int(np.argmax(np.abs(marginal[target])))
        at_row = {name: values[row:row + 1] for name, values in table.items()}
        noise = {n: float(self.mechanisms[n].noise(at_row, n)[0]) for n in order}
        deviation = {n: float(table[n][row] - self.locations[i]) for i, n in enumerate(order)}
        return Window(row, {n: float(z[row]) for n, z in marginal.items()}, noise, deviation)

    def rank_window(self, window: "Window", threshold: float = DEFAULT_THRESHOLD,
                    target_threshold: float = DEFAULT_TARGET_THRESHOLD, min_share: float = MIN_SHARE,
                    footprint: bool = True, unexplained: float = UNEXPLAINED, reach: bool = REACH,
                    beyond_normal: bool = BEYOND_NORMAL) -> list[RootCause]:
        threshold, target_threshold = check_threshold(threshold), check_threshold(target_threshold, "target_threshold")
        for name, value in (("min_share", min_share), ("unexplained", unexplained)):
            if not (np.isfinite(value) and value >= 0):
                raise UserError(f"{name} must be finite and >= 0, got {value!r}", f"give {name} a number of 0 or more")
        target, order, marginal, noise = self.target, self.order, window.marginal, window.noise
        target_z = marginal[target]
        if abs(target_z) <= target_threshold:
            return []
        anomalous = {n for n in order if abs(marginal[n]) > threshold}
        residual_z = {n: noise[n] / self.mechanisms[n].noise_scale for n in order}
        target_scale = float(self.scales[order.index(target)])
        direction = 1.0 if target_z >= 0 else -1.0
        reaching = self._reaching(marginal, direction, target_threshold) if reach else None
        qualified = {}
        for node in order:
            if node not in self.total_effect:  # not a candidate: neither the target nor one of its ancestors
                continue
            marginal_z = marginal[node]
            # The target passed its own (lower) gate already; it still has to be unexplained by its parents.
            marginal_gate = target_threshold if node == target else threshold
            if not (abs(marginal_z) > marginal_gate and abs(residual_z[node]) > threshold):
                continue
            # An external dependency's spike no larger than its normal spikes is its usual noise.
            if beyond_normal and node != target and not min(abs(marginal_z), abs(residual_z[node])) > \
                    self.normal_extreme.get(node, 0.0):
                continue
            # Its parents account for most of its deviation: a propagated anomaly, not a root. Scale-free,
            # unlike the residual z, whose scale is tiny for near-constant columns (availability at 100 %).
            if abs(noise[node]) < unexplained * abs(window.deviation[node]):
                continue
            # A fault reaches the target through callers that deviate the same way (latency up, availability
            # down along the whole chain): a candidate cut off from the target by normal callers is noise.
            if reaching is not None and node not in reaching:
                continue
            share = direction * self.total_effect[node] * noise[node] / target_scale
            if min_share > 0 and not share > min_share * abs(target_z):
                continue
            qualified[node] = (share, marginal_z)
        # A single fault at a candidate explains the anomalies downstream of it, except those at other
        # candidates (which are anomalous on their own). The candidate that explains most observed anomalies
        # ranks first (one fault is likelier than several); its share of the target's deviation breaks ties,
        # then (a share at or below 0 when the share gate is off) the size of its own residual.
        footprint_bits = node_bits((anomalous | {target}) - (set(qualified) - {target}),
                                   {n: i for i, n in enumerate(order)})
        scored = {}
        for node, (share, marginal_z) in qualified.items():
            explained = 1 + (self.below[node] & footprint_bits).bit_count() if footprint else 1
            positive, size = max(share, 0.0), np.log1p(abs(residual_z[node]))
            tie = positive / (1 + positive) + 1e-3 * size / (1 + size)
            scored[node] = RootCause(node, explained + tie, marginal_z, residual_z[node])
        # One fault is likelier than two: when an ancestor qualifies, the target's own leftover residual is
        # more likely a misfit of the linear model (effects are attenuated by noise in normal data), so the
        # target ranks last. Ties (equal scores) are broken by name so that the answer is deterministic.
        return sorted(scored.values(), key=lambda c: (c.node == target, -round(c.score, 9), c.node))

    def _reaching(self, marginal: dict, direction: float, gate: float) -> set[str]:
        """The target and the nodes with a path to it through nodes whose |z| passes ``gate`` in the
        target's direction, along edges with a positive fitted effect (walked backwards from the target)."""
        found, stack = {self.target}, [self.target]
        while stack:
            child = stack.pop()
            mechanism = self.mechanisms[child]
            for parent, coef in zip(mechanism.parents, mechanism.coef):
                # Only a call that carries its callee's change counts: a caller that did not move with the
                # callee in normal data (coefficient <= 0: an asynchronous call) does not wait for it.
                if parent not in found and coef > 0 and direction * marginal[parent] > gate:
                    found.add(parent)
                    stack.append(parent)
        return found
