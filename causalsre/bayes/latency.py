"""The hierarchical log-latency model: how a latency (TTFT, TPOT, queue time, end to end) depends on the
graph's factors, for "what would p90 TTFT have been" questions beside the burn model's bad-event rate.

    log y_request = intercept + X_cell @ beta + window[r, h] + tenant[t] + sigma * eps

Same factors, encoding (knob quadratics, knob x load interactions) and pooling groups as the burn model
(``model.py``), so a latency what-if holds the same adjustment set. Requests are aggregated into cells
through their sufficient statistics: for a cell of n requests with mean log latency ybar and sum of
squared deviations ss, the normal likelihood is N(ybar | mu, sigma / sqrt(n)) times
sigma^-(n-1) exp(-ss / (2 sigma^2)), exactly the product over its requests, so 100k requests cost a few
thousand cells.

Only requests that have the latency are modelled (a rejected request has no TTFT): the predictions are of
the served requests' latency, and the burn model is what counts the rejected ones. Priors:
``models/priors/latency_lognormal.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from causalsre.bayes.api import fit_encoding
from causalsre.bayes.encoding import FactorEncoding, with_groups
from causalsre.bayes.model import BurnModel
from causalsre.bayes.predict import PosteriorDraws, apply_interventions, cell_linear_predictor, interval
from causalsre.bayes.priors import NoisePrior, Priors, load_priors
from causalsre.errors import UserError
from causalsre.resources import LATENCY_PRIORS  # models/priors/latency_lognormal.toml

LATENCY_METRICS = ("queue_s", "ttft_s", "tpot_s", "e2e_s")
MIN_REQUESTS = 20


def served(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The requests that have a positive, finite value of ``metric``."""
    if metric not in LATENCY_METRICS:
        raise UserError(f"unknown latency metric {metric!r}", f"use one of {', '.join(LATENCY_METRICS)}")
    if metric not in table.columns:
        raise UserError(f"the analysis table has no {metric} column", "check the graph and the database")
    values = pd.to_numeric(table[metric], errors="coerce")
    return table[np.isfinite(values) & (values > 0)]


@dataclass
class LatencyModel(BurnModel):
    """The burn model's structure with a normal likelihood on log latency; ``fit`` is inherited."""

    metric: str = "ttft_s"

    def cells(self, table: pd.DataFrame, aggregate: bool = True) -> pd.DataFrame:
        rows = served(table, self.metric)
        keep = self.encoding.names + self.encoding.groups
        frame = with_groups(rows, self.encoding.groups)[keep].copy()
        if aggregate:
            frame = self.encoding.discretise(frame)
        for g in self.encoding.groups:
            frame[g] = frame[g].astype(str)
        for c in self.encoding.factors:
            if not c.numeric:
                frame[c.name] = frame[c.name].astype(str)
        frame["_log"] = np.log(rows[self.metric].to_numpy(dtype=float))
        if not aggregate:
            return frame.assign(n=1, ybar=frame["_log"], ss=0.0).drop(columns="_log")
        frame["_log2"] = frame["_log"] ** 2
        cells = frame.groupby(keep, dropna=False, sort=True, observed=True).agg(
            n=("_log", "size"), ybar=("_log", "mean"), sumsq=("_log2", "sum")).reset_index()
        # Within-cell sum of squared deviations (clipped: rounding can make a one-value cell's slightly negative).
        cells["ss"] = np.clip(cells["sumsq"] - cells["n"] * cells["ybar"] ** 2, 0.0, None)
        return cells.drop(columns="sumsq")

    def build(self, cells: pd.DataFrame):
        import pymc as pm

        model, mu = self.linear_predictor(cells)
        n = cells["n"].to_numpy(dtype=float)
        with model:
            sigma = pm.HalfNormal("sigma", (self.priors.noise or NoisePrior()).sigma)
            pm.Normal("log_latency_mean", mu=mu, sigma=sigma / np.sqrt(n), observed=cells["ybar"].to_numpy())
            pm.Potential("within_cell", -((n - 1.0).sum()) * pm.math.log(sigma)
                         - cells["ss"].to_numpy().sum() / (2.0 * sigma ** 2))
        return model


@dataclass
class FittedLatencyModel:
    idata: Any
    encoding: FactorEncoding
    metric: str
    _draws: dict = field(default_factory=dict, repr=False)

    def draws(self, n_draws: int | None = 400, seed: int = 0) -> PosteriorDraws:
        key = (n_draws, seed)
        if key not in self._draws:
            self._draws[key] = PosteriorDraws.from_idata(self.idata, n_draws, seed)
        return self._draws[key]

    def quantile_draws(self, frame: pd.DataFrame, interventions: dict | None = None, *,
                       quantiles: tuple[float, ...] = (0.5, 0.9), max_requests: int = 4000, new_run: bool = False,
                       n_draws: int | None = 400, seed: int = 0) -> dict[float, np.ndarray]:
        """Per posterior draw, the quantiles of ``metric`` over ``frame``'s served requests under the
        intervention (counterfactual: the window keeps its own intercept unless ``new_run``)."""
        rows = served(frame, self.metric)
        if len(rows) == 0:
            raise UserError(f"the window has no request with a {self.metric}", "choose a window with served requests")
        draws = self.draws(n_draws, seed)
        eta, n = cell_linear_predictor(draws, self.encoding, apply_interventions(rows, interventions), seed, new_run)
        rng = np.random.default_rng([seed, 7])
        index = np.repeat(np.arange(len(n)), n)
        if index.size > max_requests:
            index = rng.choice(index, max_requests, replace=False)
        simulated = eta[:, index] + draws.noise[:, None] * rng.standard_normal((eta.shape[0], index.size))
        return {q: np.exp(np.quantile(simulated, q, axis=1)) for q in quantiles}

    def predict(self, frame: pd.DataFrame, interventions: dict | None = None, **kwargs) -> dict[str, dict]:
        """{"p50": {"value", "low", "high"}, "p90": ...}: medians and 90 % intervals in seconds."""
        out = {}
        for q, values in self.quantile_draws(frame, interventions, **kwargs).items():
            low, high = interval(values)
            out[f"p{round(100 * q)}"] = {"value": float(np.median(values)), "low": low, "high": high}
        return out

    def diagnostics(self):
        from causalsre.bayes.diagnostics import diagnose

        return diagnose(self.idata)


def observed_quantiles(frame: pd.DataFrame, metric: str, quantiles: tuple[float, ...] = (0.5, 0.9)) -> dict | None:
    """The measured quantiles of ``metric`` over ``frame``'s served requests (None if it has none)."""
    rows = served(frame, metric)
    if len(rows) == 0:
        return None
    values = rows[metric].to_numpy(dtype=float)
    return {f"p{round(100 * q)}": float(np.quantile(values, q)) for q in quantiles}


def fit_latency_model(table: pd.DataFrame, graph: Any, *, metric: str = "ttft_s", priors: Priors | None = None,
                      sampler: str = "auto", draws: int | None = None, tune: int | None = None,
                      chains: int | None = None, seed: int = 0, progress: bool = False) -> FittedLatencyModel:
    """Fit the log-latency model of ``metric`` on an analysis table (one row per request)."""
    priors = priors or load_priors(LATENCY_PRIORS)
    rows = served(table, metric)
    if len(rows) < MIN_REQUESTS:
        raise UserError(f"only {len(rows)} requests have a {metric}", f"fit on a database with at least {MIN_REQUESTS}")
    _, encoding = fit_encoding(rows, graph, priors)
    idata = LatencyModel(priors, encoding, metric).fit(rows, sampler=sampler, draws=draws, tune=tune, chains=chains,
                                                       seed=seed, progress=progress)
    idata.posterior.attrs.update(model_type="hierarchical_lognormal_latency", metric=metric)
    return FittedLatencyModel(idata, encoding, metric)
