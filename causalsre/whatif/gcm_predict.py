"""What-if from a structural causal model fitted with dowhy.gcm, with bootstrap intervals.

Each graph node present in the analysis table gets a mechanism: roots their empirical distribution,
``is_bad`` and categorical nodes a gradient-boosted classifier, numeric nodes an additive-noise model
with a gradient-boosted regressor (on log1p scale for non-negative quantities, where latency noise is
multiplicative). Graph nodes the table lacks are projected out (their causes are wired to their effects),
so a missing mediator does not cut a knob off from the outcome.

An intervention is applied to the window's own requests (``interventional_samples`` with the observed
roots: same workload, same hardware, new knob) and ``is_bad`` is re-drawn downstream. The interval comes
from refitting on bootstrap resamples and drawing each several times, so it holds both the model's
uncertainty and the luck of a finite window.

The resamples are of *runs*, not rows (a cluster bootstrap): requests of one run share its machine, its
faults and its settings, so resampling rows treats 1,500 correlated requests as 1,500 independent facts
and every refit learns the same mechanisms (the v1 intervals covered 17 % of the replays). Resampling runs
asks what the model would say had another set of scenarios been recorded, which is the model-form
uncertainty that matters here: a knob value seen in one run only is absent from about a third of the
refits. With fewer than ``min_clusters`` runs, rows are resampled as before.

Even so, refits share the model's form (the same learners, the same graph), so they agree with each other
about things none of them can see (the machine's speed at replay time, a mechanism the boosted trees
extrapolate flat). The interval is therefore widened by *out-of-bag residuals*: each refit predicts the
recorded bad-event rate of every window (run x phase) of the runs it did not see, and the logit-scale
errors of those predictions, one per (refit, window), are added to the prediction draws. It is the
model's own out-of-run error, measured on the data, not a constant chosen to hit a coverage figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.bayes.factors import OUTCOME, GraphView
from causalsre.errors import UserError

_META = {"run_id", "request_id", "phase", "arrival_ts"}


def project_graph(view: GraphView, columns: list[str]) -> nx.DiGraph:
    """The graph on ``columns``: each dropped node's causes become causes of its effects."""
    graph = nx.DiGraph(view.digraph.edges)
    graph.add_nodes_from(view.digraph.nodes)
    keep = set(columns)
    for name in [n for n in nx.topological_sort(graph) if n not in keep]:
        for cause in list(graph.predecessors(name)):
            for effect in list(graph.successors(name)):
                graph.add_edge(cause, effect)
        graph.remove_node(name)
    return graph


@dataclass
class Encoded:
    """Numeric data the SCM is fitted on, and how to get there from the analysis table."""

    categories: dict[str, list[str]] = field(default_factory=dict)
    logged: list[str] = field(default_factory=list)
    fill: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, table: pd.DataFrame, graph: nx.DiGraph, view: GraphView) -> Encoded:
        enc = cls()
        for name in graph.nodes:
            col = table[name]
            if name == OUTCOME:
                continue
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                enc.categories[name] = sorted(col.astype(str).unique().tolist())
                continue
            values = col.to_numpy(dtype=float)
            # A request that never got a first token has no TTFT: count it as the slowest seen, not average.
            role = view.nodes.get(name).role if name in view.nodes else ""
            finite = values[np.isfinite(values)]
            enc.fill[name] = float(finite.max() if role == "outcome" else np.median(finite)) if finite.size else 0.0
            if graph.in_degree(name) > 0 and finite.size and finite.min() >= 0:
                enc.logged.append(name)
        return enc

    def apply(self, table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        out = pd.DataFrame(index=table.index)
        for name in columns:
            if name == OUTCOME:
                # gcm classifiers take string classes; inputs are one-hot encoded by dowhy itself.
                out[name] = np.where(table[name].astype(bool), "1", "0").astype(object)
            elif name in self.categories:
                values = table[name].astype(str)
                self.code(name, values)
                out[name] = values.to_numpy(dtype=object)
            else:
                values = table[name].astype(float).fillna(self.fill.get(name, 0.0))
                out[name] = np.log1p(values) if name in self.logged else values
        return out

    def code(self, name: str, values) -> np.ndarray:
        levels = self.categories[name]
        values = np.atleast_1d(np.asarray(values, dtype=object)).astype(str)
        unknown = sorted(set(values) - set(levels))
        if unknown:
            raise UserError(f"{name}={unknown[0]} never occurs in the data (seen: {', '.join(levels)})",
                            "choose a value the model has seen")
        return np.array([levels.index(v) for v in values])

    def encode_value(self, name: str, value):
        if name in self.categories:
            self.code(name, [value])
            return str(value)
        value = float(value)
        return float(np.log1p(value)) if name in self.logged else value


def _build_scm(graph: nx.DiGraph, encoded: Encoded, seed: int):
    from dowhy import gcm
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    scm = gcm.StructuralCausalModel(graph)
    for name in graph.nodes:
        if graph.in_degree(name) == 0:
            scm.set_causal_mechanism(name, gcm.EmpiricalDistribution())
        elif name == OUTCOME or name in encoded.categories:
            model = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=seed)
            scm.set_causal_mechanism(name, gcm.ClassifierFCM(gcm.ml.SklearnClassificationModel(model)))
        else:
            model = HistGradientBoostingRegressor(max_iter=60, max_leaf_nodes=15, random_state=seed)
            scm.set_causal_mechanism(name, gcm.AdditiveNoiseModel(gcm.ml.SklearnRegressionModel(model)))
    return scm


@dataclass
class GcmWhatIf:
    """Bootstrap ensemble of fitted SCMs over the analysis table's graph nodes."""

    graph: nx.DiGraph
    encoded: Encoded
    models: list
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))   # out-of-bag logit errors

    @classmethod
    def fit(cls, table: pd.DataFrame, view: GraphView, *, bootstraps: int = 8, max_rows: int = 20_000,
            seed: int = 0, cluster: str | None = "run_id", min_clusters: int = 4) -> GcmWhatIf:
        from dowhy import gcm

        gcm.config.disable_progress_bars()
        columns = [n for n in view.nodes if n in table.columns and n not in _META]
        if OUTCOME not in columns:
            raise UserError("the graph has no is_bad node in the analysis table", "add is_bad to the graph spec")
        graph = project_graph(view, columns)
        graph.remove_nodes_from([n for n in list(graph.nodes) if n != OUTCOME and not nx.has_path(graph, n, OUTCOME)])
        encoded = Encoded.fit(table, graph, view)
        data = encoded.apply(table, list(graph.nodes))
        rng = np.random.default_rng(seed)
        groups = None
        if cluster and cluster in table.columns and table[cluster].nunique() >= min_clusters:
            codes = pd.factorize(table[cluster].astype(str))[0]
            groups = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
        models, bags = [], []
        for b in range(bootstraps):
            if groups is None:
                rows = rng.choice(len(data), min(len(data), max_rows), replace=True)
            else:
                bags.append(rng.choice(len(groups), len(groups), replace=True))
                rows = np.concatenate([groups[g] for g in bags[-1]])
                if len(rows) > max_rows:
                    rows = rng.choice(rows, max_rows, replace=False)
            scm = _build_scm(graph, encoded, seed + b)
            gcm.fit(scm, data.iloc[rows].reset_index(drop=True))
            models.append(scm)
        model = cls(graph, encoded, models)
        if groups is not None:
            model.residuals = model._out_of_bag_residuals(table, groups, bags, seed)
        return model

    def _out_of_bag_residuals(self, table: pd.DataFrame, groups: list, bags: list, seed: int) -> np.ndarray:
        """logit(recorded) - logit(predicted) for every window of the runs each refit left out."""
        errors = []
        for scm, bag in zip(self.models, bags):
            for g in sorted(set(range(len(groups))) - set(bag)):
                part = table.iloc[groups[g]]
                windows = part.groupby("phase", sort=True) if "phase" in part.columns else [(None, part)]
                for _, window in windows:
                    predicted = self._draws([scm], window, None, repeats=1, seed=seed)[0]
                    errors.append(_logit(float(window[OUTCOME].mean()), len(window)) - _logit(predicted, len(window)))
        return np.array(errors, dtype=float)

    def bad_rate(self, window: pd.DataFrame, interventions: dict | None = None, *, repeats: int = 5,
                 seed: int = 0, widen: bool = True, per_draw: int = 8) -> np.ndarray:
        """Draws of the window's bad-event rate under ``interventions``: bootstraps x repeats values, or with
        ``widen`` (and out-of-bag residuals to widen by) bootstraps x repeats x ``per_draw`` values."""
        rates = self._draws(self.models, window, interventions, repeats=repeats, seed=seed)
        if not widen or self.residuals.size < 5:
            return rates
        # Per refit: the expected rate (mean over its repeats), shifted by out-of-bag residuals, then the
        # binomial luck of a window of this many requests (what a replay measures).
        n = len(window)
        expected = rates.reshape(len(self.models), repeats).mean(axis=1)
        rng = np.random.default_rng(seed + 7)
        shift = rng.choice(self.residuals, (expected.size, repeats * per_draw), replace=True)
        logits = np.array([_logit(r, n) for r in expected])[:, None] + shift
        return rng.binomial(n, 1.0 / (1.0 + np.exp(-logits))).ravel() / n

    def _draws(self, models: list, window: pd.DataFrame, interventions: dict | None, *, repeats: int,
               seed: int) -> np.ndarray:
        from dowhy import gcm

        data = self.encoded.apply(window, list(self.graph.nodes))
        targets = {}
        for knob, value in (interventions or {}).items():
            if knob not in self.graph:
                raise UserError(f"{knob} has no path to is_bad in the graph over this data",
                                "choose a knob the graph connects to the outcome")
            if np.ndim(value) == 1:
                # One value per request (a workload drawn from the baseline's requests): dowhy maps the
                # intervention over the column element by element, in order, so a cycle stays aligned.
                values = self.encoded.apply(pd.DataFrame({knob: value}, index=window.index), [knob])[knob].to_numpy()
                targets[knob] = _PerRow(values)
                continue
            encoded_value = self.encoded.encode_value(knob, value)
            targets[knob] = lambda x, v=encoded_value: np.full(np.shape(x), v, dtype=np.asarray(x).dtype)
        if not targets:
            # No change: set every root to itself, so everything downstream is re-drawn by the model.
            roots = [n for n in self.graph.nodes if self.graph.in_degree(n) == 0]
            targets = {root: (lambda x: x) for root in roots}
        np.random.seed(seed)   # gcm draws noise from numpy's global generator
        rates = []
        for scm in models:
            for _ in range(repeats):
                samples = gcm.interventional_samples(scm, targets, observed_data=data)
                rates.append(float((samples[OUTCOME].astype(str) == "1").mean()))
        return np.array(rates)


class _PerRow:
    """An intervention that gives the i-th request the i-th value (dowhy calls it once per request)."""

    def __init__(self, values: np.ndarray):
        self.values, self.i = values, 0

    def __call__(self, _x):
        value = self.values[self.i % len(self.values)]
        self.i += 1
        return value


def _logit(rate: float, n: int) -> float:
    """Logit of a rate of ``n`` requests, kept finite (half a request from 0 and 1)."""
    eps = 0.5 / max(n, 1)
    p = min(max(rate, eps), 1.0 - eps)
    return float(np.log(p / (1.0 - p)))
