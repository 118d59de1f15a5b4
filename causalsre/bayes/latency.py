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

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from causalsre.bayes.encoding import with_groups
from causalsre.bayes.model import BayesModel, FittedModel, fit_encoding
from causalsre.bayes.predict import apply_interventions, cell_linear_predictor, interval
from causalsre.bayes.priors import NoisePrior, Priors, load_priors
from causalsre.bayes.store import (attach_provenance, cache_dir, cache_save, encoding_of, load_fit,
                                   table_fingerprint)
from causalsre.errors import UserError
from causalsre.resources import LATENCY_PRIORS  # models/priors/latency_lognormal.toml

LATENCY_METRICS = ("queue_s", "ttft_s", "tpot_s", "e2e_s")
MIN_REQUESTS = 20
MODEL_TYPE = "hierarchical_lognormal_latency"


def served(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The requests that have a positive, finite value of ``metric``."""
    if metric not in LATENCY_METRICS:
        raise UserError(f"unknown latency metric {metric!r}", f"use one of {', '.join(LATENCY_METRICS)}")
    if metric not in table.columns:
        raise UserError(f"the analysis table has no {metric} column", "check the graph and the database")
    values = pd.to_numeric(table[metric], errors="coerce")
    return table[np.isfinite(values) & (values > 0)]


@dataclass
class LatencyModel(BayesModel):
    """The shared linear predictor with a normal likelihood on log latency, through cell statistics."""

    metric: str = "ttft_s"
    model_type: ClassVar[str] = MODEL_TYPE

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

    def likelihood(self, cells: pd.DataFrame, mu) -> None:
        import pymc as pm

        n = cells["n"].to_numpy(dtype=float)
        sigma = pm.HalfNormal("sigma", (self.priors.noise or NoisePrior()).sigma)
        pm.Normal("log_latency_mean", mu=mu, sigma=sigma / np.sqrt(n), observed=cells["ybar"].to_numpy())
        pm.Potential("within_cell", -((n - 1.0).sum()) * pm.math.log(sigma)
                     - cells["ss"].to_numpy().sum() / (2.0 * sigma ** 2))


@dataclass
class FittedLatencyModel(FittedModel):
    """A latency-model fit: per-draw quantiles of the metric over a window's served requests."""

    metric: str

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


def observed_quantiles(frame: pd.DataFrame, metric: str, quantiles: tuple[float, ...] = (0.5, 0.9)) -> dict | None:
    """The measured quantiles of ``metric`` over ``frame``'s served requests (None if it has none)."""
    rows = served(frame, metric)
    if len(rows) == 0:
        return None
    values = rows[metric].to_numpy(dtype=float)
    return {f"p{round(100 * q)}": float(np.quantile(values, q)) for q in quantiles}


def _latency_config(table: pd.DataFrame, graph: Any, metric: str, priors: Priors):
    """(served rows, encoding, configuration hash, data fingerprint): what fitting and loading share."""
    rows = served(table, metric)
    if len(rows) < MIN_REQUESTS:
        raise UserError(f"only {len(rows)} requests have a {metric}", f"fit on a database with at least {MIN_REQUESTS}")
    factors, encoding = fit_encoding(rows, graph, priors)
    hashed = priors.config_hash(sorted(factors), metric, sorted(map(list, encoding.interactions)))
    seen = [c for c in dict.fromkeys([*encoding.names, "run_id", "phase", "tenant", metric]) if c in rows.columns]
    return rows, encoding, hashed, table_fingerprint(rows[seen])


def fit_latency_model(table: pd.DataFrame, graph: Any, *, metric: str = "ttft_s", priors: Priors | None = None,
                      sampler: str = "auto", draws: int | None = None, tune: int | None = None,
                      chains: int | None = None, seed: int = 0, progress: bool = False,
                      cache: bool = True) -> FittedLatencyModel:
    """Fit the log-latency model of ``metric`` on an analysis table (one row per request).

    With ``cache`` (default) a sampled fit is saved under :func:`~causalsre.bayes.store.cache_dir`, keyed by
    the configuration, the sampler settings, the seed and a fingerprint of the rows, and the next call with
    the same key loads it instead of sampling again (``whatif --latency`` and ``eval whatif`` refit nothing).
    Prior draws (``sampler="prior"``) are quick and never cached."""
    priors = priors or load_priors(LATENCY_PRIORS)
    rows, encoding, hashed, fingerprint = _latency_config(table, graph, metric, priors)
    cached = None
    if cache and sampler != "prior":
        s = priors.sampler
        cached = cache_dir() / (f"latency-{metric}-{hashed}-{fingerprint}-{sampler}-d{draws or s.draws}"
                                f"-t{tune or s.tune}-c{chains or s.chains}-s{seed}.nc")
        if cached.is_file():
            try:
                return load_latency_model(cached, table, graph, metric=metric, priors=priors)
            except UserError:
                pass   # an unreadable or stale cache file is refitted (and overwritten) below
    idata = LatencyModel(priors, encoding, metric).fit(rows, sampler=sampler, draws=draws, tune=tune, chains=chains,
                                                       seed=seed, progress=progress)
    attach_provenance(idata, version=priors.model.version, config_hash=hashed, db_fingerprint=fingerprint,
                      encoding=encoding, model_type=MODEL_TYPE, metric=metric)
    if cached is not None:
        cache_save(idata, cached)
    return FittedLatencyModel(idata, encoding, metric)


def load_latency_model(path: str | Path, table: pd.DataFrame, graph: Any, *, metric: str = "ttft_s",
                       priors: Priors | None = None) -> FittedLatencyModel:
    """Load a saved latency fit of these rows, graph, metric and priors; anything else is refused."""
    priors = priors or load_priors(LATENCY_PRIORS)
    _, _, hashed, fingerprint = _latency_config(table, graph, metric, priors)
    idata = load_fit(path, version=priors.model.version, config_hash=hashed, db_fingerprint=fingerprint,
                     model_type=MODEL_TYPE)
    return FittedLatencyModel(idata, encoding_of(idata), metric)
