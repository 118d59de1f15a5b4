"""Causal mechanisms fitted on pooled baseline + incident requests, and what changed between the windows.

Every non-root node gets one gradient-boosted model of its parents, fitted on both windows together, and an
additive noise term (its residual, in a log scale for latencies and counts). Pooling is what lets a knob
that is constant within each window carry an effect: its two values are both in the training data. A
change between the windows is then either a root node whose distribution moved (a knob, the hardware, the
workload) or a node whose residuals moved (a mechanism change nothing in the graph explains).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from causalsre.causal.graph import GraphSpec

FIT_ROWS_PER_WINDOW = 5_000  # fitting subsample per window: the models' cost grows with rows, accuracy not much
CHANGE_ALPHA = 0.01  # two-sample test level for "this node changed"
CHANGE_MIN_EFFECT = 0.15  # ... and the smallest KS distance (or total variation) that counts as a change
BINARY_EFFECT_SCALE = 5.0  # a 3-point calibration shift ranks like a KS distance of 0.15
MAX_PLAYERS = 6  # exact Shapley over 2^6 coalitions at most
LOG_ROLES = ("engine_state", "outcome")
SCALE_FLOOR = 1e-3


@dataclass
class Encoded:
    """Both windows as float matrices over the same node columns (categoricals as shared codes)."""

    nodes: list[str]
    baseline: pd.DataFrame
    incident: pd.DataFrame


def encode(baseline: pd.DataFrame, incident: pd.DataFrame, graph: GraphSpec) -> Encoded:
    nodes = [n for n in graph.topological_order() if n in baseline.columns and n in incident.columns]
    out_b, out_i = {}, {}
    for node in nodes:
        b, i = baseline[node], incident[node]
        if graph.nodes[node].type == "categorical" or b.dtype == object or i.dtype == object:
            categories = sorted(set(b.dropna().astype(str)) | set(i.dropna().astype(str)))
            codes = {c: float(k) for k, c in enumerate(categories)}
            out_b[node], out_i[node] = b.astype(str).map(codes), i.astype(str).map(codes)
        else:
            out_b[node], out_i[node] = b.astype(float), i.astype(float)
        lo = min(out_b[node].min(skipna=True), out_i[node].min(skipna=True))
        if graph.nodes[node].role in LOG_ROLES and graph.nodes[node].type != "binary" and lo >= 0:
            # Latencies and queue depths are multiplicative: additive noise in the log is closer to true.
            out_b[node], out_i[node] = np.log1p(out_b[node]), np.log1p(out_i[node])
    return Encoded(nodes, pd.DataFrame(out_b)[nodes], pd.DataFrame(out_i)[nodes])


class Mechanism:
    """node = model(parents) + noise; a classifier's probability for binary nodes."""

    def __init__(self, node: str, parents: list[str], binary: bool, seed: int, signs: list[int] | None = None):
        self.node, self.parents, self.binary, self.seed = node, parents, binary, seed
        self.signs = signs or [0] * len(parents)
        self.model = None
        self.scale_model = None
        self.constant = 0.0

    def fit(self, frame: pd.DataFrame) -> Mechanism:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        rows = frame[frame[self.node].notna()]
        y = rows[self.node].to_numpy(float)
        self.constant = float(np.mean(y)) if len(y) else 0.0
        if len(y) < 10 or np.unique(y).size < 2:
            return self  # nothing to learn: a constant mechanism
        settings = dict(max_iter=40, learning_rate=0.15, max_leaf_nodes=15,
                        min_samples_leaf=max(3, len(y) // 200), early_stopping=False, random_state=self.seed)
        monotone = dict(monotonic_cst=self.signs) if any(self.signs) else {}
        model = (HistGradientBoostingClassifier(**settings, **monotone) if self.binary
                 else HistGradientBoostingRegressor(**settings, **monotone))
        x = rows[self.parents].to_numpy(float)
        self.model = model.fit(x, y.astype(int) if self.binary else y)
        if not self.binary:
            # Location-scale noise: queueing makes the spread grow with the load, and a threshold SLO
            # reads the tail, so the noise is standardised by a fitted scale of the parents.
            spread = np.log(np.abs(y - self.model.predict(x)) + SCALE_FLOOR)
            self.scale_model = HistGradientBoostingRegressor(**settings).fit(x, spread)
        return self

    def scale(self, parent_values: np.ndarray) -> np.ndarray:
        if self.scale_model is None:
            return np.ones(len(parent_values))
        return np.exp(self.scale_model.predict(parent_values))

    def predict(self, parent_values: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.full(len(parent_values), self.constant)
        if self.binary:
            return self.model.predict_proba(parent_values)[:, 1]
        return self.model.predict(parent_values)


def fit_mechanisms(data: Encoded, graph: GraphSpec, seed: int, progress=None) -> dict[str, Mechanism]:
    """One mechanism per non-root node, in topological order, fitted on the pooled windows. A latency that a
    request never had (refused at arrival: too large for the KV cache, a full queue) is filled in ``data`` by
    its mechanism as it is fitted (:func:`_fill_unmeasured`), before any child is fitted on it."""
    rng = np.random.default_rng(seed)
    pooled = pd.concat([_subsample(data.baseline, rng), _subsample(data.incident, rng)], ignore_index=True)
    mechanisms = {}
    for node in data.nodes:
        parents = [p for p in graph.parents(node) if p in data.nodes]
        if parents:
            binary = graph.nodes[node].type == "binary"
            signs = [0 if graph.nodes[p].type == "categorical" else graph.sign(p, node) for p in parents]
            mechanisms[node] = Mechanism(node, parents, binary, seed, signs).fit(pooled)
            if node != graph.target and graph.nodes[node].role == "outcome":
                for frame in (pooled, data.baseline, data.incident):
                    _fill_unmeasured(frame, mechanisms[node])
        if progress:
            progress()
    return mechanisms


def _fill_unmeasured(frame: pd.DataFrame, mech: Mechanism) -> None:
    """A request refused at arrival has no queue time, TTFT or TPOT: its missing latencies are a consequence of
    the refusal, not evidence of why it was bad. Left missing, the bad-event classifier learns "no TTFT, bad"
    and explains every refusal by that mark, so no cause upstream can carry it: a KV cache shrunk below the
    largest requests' size refused them and the shrink explained 0 of 15 points, all of it in "other". Filled
    with the mechanism's prediction (noise 0), the classifier must explain the refusal by the refusal's causes
    (the cache size and the request's size, the queue depth and its bound, the timeout)."""
    missing = frame[mech.node].isna().to_numpy()
    if missing.any() and mech.model is not None:
        frame.loc[missing, mech.node] = mech.predict(frame.loc[missing, mech.parents].to_numpy(float))


def _subsample(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= FIT_ROWS_PER_WINDOW:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), FIT_ROWS_PER_WINDOW, replace=False))]


def residuals(frame: pd.DataFrame, mechanisms: dict[str, Mechanism]) -> pd.DataFrame:
    out = {}
    for node, mech in mechanisms.items():
        parents = frame[mech.parents].to_numpy(float)
        out[node] = (frame[node].to_numpy(float) - mech.predict(parents)) / mech.scale(parents)
    return pd.DataFrame(out, index=frame.index)


@dataclass(frozen=True, slots=True)
class Change:
    node: str
    kind: str  # "distribution" (a root moved) or "mechanism" (residuals moved)
    effect: float  # KS distance or total variation
    p_value: float


def detect_changes(data: Encoded, res_b: pd.DataFrame, res_i: pd.DataFrame, graph: GraphSpec,
                   limit: int | None = MAX_PLAYERS) -> list[Change]:
    """Roots whose distribution moved and mechanisms whose residuals moved, largest effect first
    (at most ``limit``; ``None``: all of them)."""
    changes = []
    for node in data.nodes:
        if graph.nodes[node].trailing:
            continue  # autocorrelated per request: tested at the window level (causalsre.causal.changes)
        if node in res_b.columns:
            b, i, kind = res_b[node], res_i[node], "mechanism"
        else:
            b, i, kind = data.baseline[node], data.incident[node], "distribution"
        b, i = b.dropna().to_numpy(float), i.dropna().to_numpy(float)
        if len(b) < 2 or len(i) < 2:
            continue
        if kind == "mechanism" and graph.nodes[node].type == "binary":
            # Residuals of a calibrated classifier differ between windows whenever the rates do; a
            # mechanism change shows as a shift of their mean (calibration in the large) instead.
            effect = abs(float(b.mean() - i.mean())) * BINARY_EFFECT_SCALE
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # identical residuals: p is nan, no change
                p_value = float(np.nan_to_num(stats.ttest_ind(b, i, equal_var=False).pvalue, nan=1.0))
        elif graph.nodes[node].type == "categorical":
            effect, p_value = _categorical_change(b, i)
        elif np.unique(b).size == 1 and np.unique(i).size == 1:
            # A knob constant in each window: it changed iff its value did; nothing to test.
            effect, p_value = (1.0, 0.0) if b[0] != i[0] else (0.0, 1.0)
        else:
            result = stats.ks_2samp(b, i)
            effect, p_value = float(result.statistic), float(result.pvalue)
        if p_value < CHANGE_ALPHA and effect >= CHANGE_MIN_EFFECT:
            changes.append(Change(node, kind, effect, p_value))
    changes.sort(key=lambda c: (-c.effect, c.p_value, c.node))
    return changes if limit is None else changes[:limit]


def _categorical_change(b: np.ndarray, i: np.ndarray) -> tuple[float, float]:
    categories = np.union1d(b, i)
    counts = np.array([[np.sum(b == c) for c in categories], [np.sum(i == c) for c in categories]])
    if len(categories) < 2:
        return 0.0, 1.0
    total_variation = 0.5 * float(np.abs(counts[0] / counts[0].sum() - counts[1] / counts[1].sum()).sum())
    return total_variation, float(stats.chi2_contingency(counts)[1])
