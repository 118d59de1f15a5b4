"""Exact Shapley attribution of a change in the bad-event rate to the changes between two windows.

Players are the detected changes (a root whose distribution moved, a mechanism whose noise moved). For a
coalition S we rebuild requests in topological order from *pairs* of rows (one baseline request, one
incident request): a root takes the incident request's value if it is in S, else the baseline's; a
non-root node is its fitted mechanism of the (rebuilt) parents plus the incident request's residual if it
is in S, else the baseline request's. With no player the rebuilt rows are exactly the baseline rows, with
every player (when every change was detected) they are the incident rows, so the Shapley values sum to the
change. The target is rebuilt the same way (probability plus residual), so ``v(S)`` is a bad-event rate.

Shapley values are linear in ``v``, and ``v`` is a mean over the row pairs, so one set of per-pair Shapley
values gives the bootstrap for free: resampling pairs resamples the attribution (sampling uncertainty given
the fitted mechanisms; model-fitting uncertainty is not in the interval). Pairs are drawn from the windows'
requests, so resampling pairs alone measures the Monte Carlo noise of the pairs, not how few requests the
windows hold: 2,000 pairs over 8 and 10 requests looked as certain as 2,000 pairs over 8,000 and 10,000.
:func:`request_variance` adds the requests' own sampling variance (the two-sample U-statistic's first-order
terms), which is what makes a burn of two requests in ten an "I cannot tell" rather than a named cause.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np

from causalsre.causal.mechanisms import Mechanism


class CoalitionEvaluator:
    """Per-pair target values of every coalition of players."""

    def __init__(self, nodes: list[str], mechanisms: dict[str, Mechanism], players: list[str], target: str):
        self.nodes, self.mechanisms, self.players, self.target = nodes, mechanisms, players, target
        self.index = {n: k for k, n in enumerate(nodes)}
        self._descendants = self._reach()

    def _reach(self) -> dict[str, set[str]]:
        """Nodes each player can change (itself and its descendants through the mechanisms)."""
        children: dict[str, set[str]] = {n: set() for n in self.nodes}
        for node, mech in self.mechanisms.items():
            for parent in mech.parents:
                children[parent].add(node)
        reach = {}
        for player in self.players:
            seen, stack = {player}, [player]
            while stack:
                for child in children[stack.pop()]:
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
            reach[player] = seen
        return reach

    def values(self, base: np.ndarray, inc: np.ndarray, res_base: dict, res_inc: dict,
               coalitions: list[frozenset]) -> dict[frozenset, np.ndarray]:
        """Target values of the rebuilt pairs for every coalition. ``base``/``inc``: (pairs x nodes) values;
        ``res_*``: residuals per node. All coalitions go through each mechanism in one batched predict."""
        pairs = len(base)
        rebuilt = np.tile(base, (len(coalitions), 1))
        touched = [set().union(*(self._descendants[p] for p in c)) if c else set() for c in coalitions]
        for node in self.nodes:
            blocks = [c for c, t in enumerate(touched) if node in t]
            if not blocks:
                continue  # nothing upstream changed in any coalition: the baseline values stand
            rows = np.concatenate([np.arange(b * pairs, (b + 1) * pairs) for b in blocks])
            in_coalition = np.repeat([node in coalitions[b] for b in blocks], pairs)
            k = self.index[node]
            mech = self.mechanisms.get(node)
            if mech is None:  # a root: touched only when it is a player in the coalition
                rebuilt[rows, k] = np.tile(inc[:, k], len(blocks))
                continue
            noise = np.where(in_coalition, np.tile(res_inc[node], len(blocks)), np.tile(res_base[node], len(blocks)))
            parents = rebuilt[np.ix_(rows, [self.index[p] for p in mech.parents])]
            rebuilt[rows, k] = mech.predict(parents) + mech.scale(parents) * noise
        target = rebuilt[:, self.index[self.target]].reshape(len(coalitions), pairs)
        return {c: target[b] for b, c in enumerate(coalitions)}


def shapley_per_pair(evaluate, players: list[str], coalition_means: dict | None = None) -> np.ndarray:
    """Exact Shapley values per pair (players x pairs). ``evaluate(coalitions)`` returns per-pair values of
    each coalition (a dict keyed by frozenset). ``coalition_means``, when given, receives each coalition's mean
    value: the model's target with only those players changed (what a partial revert would leave)."""
    k = len(players)
    coalitions = [frozenset(c) for size in range(k + 1) for c in combinations(players, size)]
    v = evaluate(coalitions)
    if coalition_means is not None:
        coalition_means.update({c: float(np.mean(v[c])) for c in coalitions})
    pairs = len(v[frozenset()])
    phi = np.zeros((k, pairs))
    for i, player in enumerate(players):
        others = [p for p in players if p != player]
        for size in range(k):
            weight = factorial(size) * factorial(k - size - 1) / factorial(k)
            for subset in combinations(others, size):
                base = frozenset(subset)
                phi[i] += weight * (v[base | {player}] - v[base])
    return phi


def bootstrap_means(per_pair: np.ndarray, n_boot: int, rng: np.random.Generator,
                    level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals of the row means of ``per_pair`` (rows x pairs) over resampled pairs."""
    pairs = per_pair.shape[1]
    draws = rng.integers(0, pairs, size=(n_boot, pairs))
    means = np.stack([per_pair[:, d].mean(axis=1) for d in draws])  # n_boot x rows
    tail = (1 - level) / 2 * 100
    return np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def request_variance(per_pair: np.ndarray, pair_base: np.ndarray, pair_inc: np.ndarray, n_base: int,
                     n_inc: int) -> np.ndarray:
    """Per row of ``per_pair`` (rows x pairs), the variance the windows' finite requests add to its mean.

    With phi(x, y) = mu + a(x) + b(y) + e(x, y) (Hoeffding), the mean over K random pairs of n_b baseline and
    n_i incident requests has variance Var(phi) / K + Var(a) / n_b + Var(b) / n_i: the pair bootstrap
    measures the first term, this returns the other two. Var(a) is estimated from the per-request means of
    phi (one-way ANOVA: the spread of the group means less what their own pair noise explains)."""
    return (_between_variance(per_pair, pair_base) / max(n_base, 1)
            + _between_variance(per_pair, pair_inc) / max(n_inc, 1))


def _between_variance(per_pair: np.ndarray, groups: np.ndarray) -> np.ndarray:
    ids, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(ids) < 2:
        return np.zeros(per_pair.shape[0])
    sums = np.zeros((per_pair.shape[0], len(ids)))
    np.add.at(sums.T, inverse, per_pair.T)
    means = sums / counts
    between = ((means - per_pair.mean(axis=1, keepdims=True)) ** 2 * counts).sum(axis=1) / counts.sum()
    spare = len(groups) - len(ids)
    if spare <= 0:
        return np.zeros(per_pair.shape[0])  # every request in one pair: no way to tell a(x) from the pair noise
    within = ((per_pair - means[:, inverse]) ** 2).sum(axis=1) / spare
    return np.maximum(between - within * len(ids) / len(groups), 0.0)  # E[between] = Var(a) + within J / K


def widen(means: np.ndarray, low: np.ndarray, high: np.ndarray, extra_variance: np.ndarray,
          level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap interval ends widened by an independent variance (normal quantile), each side kept apart."""
    from scipy.stats import norm

    z2 = norm.ppf(0.5 + level / 2) ** 2 * extra_variance
    return means - np.sqrt((means - low) ** 2 + z2), means + np.sqrt((high - means) ** 2 + z2)
