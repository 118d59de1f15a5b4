"""The linear structural model that ``attribute`` fits on normal data (:mod:`causalsre.causal.rootcause`): each
node as ridge regression on its parents plus a robustly scaled noise."""

from __future__ import annotations

from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from causalsre.causal.robust import robust_scale, robust_scales

RIDGE_ALPHA = 1.0
# The effect of a parent that never moved in the normal data cannot be estimated from it. We assume a unit
# effect in the column's own units, right for metrics of one kind along a call graph (a caller's latency or
# error rate moves with its callee's); pass 0 to ignore such parents instead.
UNESTIMABLE_EFFECT = 1.0


@dataclass(frozen=True, slots=True)
class LinearMechanism:
    """node = intercept + coef . parents + noise, fitted by ridge regression on normal data."""

    parents: list[str]
    coef: np.ndarray
    intercept: float
    noise_location: float
    noise_scale: float

    def noise(self, columns: dict[str, np.ndarray], node: str) -> np.ndarray:
        """The node's noise in each row; ``columns`` maps a node to its values (a float array)."""
        predicted = self.intercept + (_stack(columns, self.parents) @ self.coef if self.parents else 0.0)
        return columns[node] - predicted - self.noise_location


def _stack(columns: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.column_stack([columns[name] for name in names])  # (rows, len(names))


def fit_linear(node: str, parents: list[str], normal: dict[str, np.ndarray]) -> LinearMechanism:
    """Ridge regression of ``node`` on ``parents`` over the normal rows (name -> values), noise scaled."""
    fitted = _ridge(node, parents, normal)
    location, scale = robust_scale(fitted.noise(normal, node))
    return replace(fitted, noise_location=location, noise_scale=scale)


def fit_mechanisms(graph: nx.DiGraph, order: list[str], normal: dict[str, np.ndarray]) -> dict[str, LinearMechanism]:
    """:func:`fit_linear` for every node, the noise scales of all nodes computed in one vectorized pass."""
    fitted = {n: _ridge(n, sorted(graph.predecessors(n)), normal) for n in order}
    locations, scales = robust_scales(np.column_stack([fitted[n].noise(normal, n) for n in order]))
    return {n: replace(fitted[n], noise_location=float(locations[i]), noise_scale=float(scales[i]))
            for i, n in enumerate(order)}


def _ridge(node: str, parents: list[str], normal: dict[str, np.ndarray]) -> LinearMechanism:
    y = normal[node]
    coef = np.zeros(len(parents))
    if parents:
        x = _stack(normal, parents)
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
    return LinearMechanism(parents, coef, intercept, 0.0, 1.0)
