"""The Bayesian model base and the hierarchical logistic burn model (the latency model: ``latency.py``).

:class:`BayesModel` holds what every model shares: the linear predictor over the encoded graph factors
with pooled group intercepts, building, fitting (nutpie, PyMC NUTS or prior draws) and the fit's timing
attributes. A model adds its cells and its likelihood. :class:`FittedModel` is a fit: posterior draws,
diagnostics and save/load with provenance (``store.py``). The burn model:

    logit p_cell = intercept + X_cell @ beta + window[r, h] + tenant[t]
    bad_cell ~ Binomial(n_cell, p_cell)

``X`` holds the encoded factors, the quadratic terms of actionable knobs and the knob x load interactions
the graph implies (``encoding.py``, ``factors.interaction_pairs``). Random intercepts are non-centred
(``sigma * z``) because with few requests per window the centred form makes a funnel that NUTS diverges
in; a group whose every level holds at least ``pooling.centred_min_requests`` requests is centred instead
(there the data fix each effect and the non-centred form is the one that funnels). A
group with fewer than ``pooling.min_levels`` levels (two tenants, say) cannot estimate its own spread: its
levels become fixed effects with the pooling scale as their prior SD (no hyperparameter, no funnel). Fitting uses nutpie when installed (compiled with numba, several times faster
than PyMC's own NUTS on 2 cores), PyMC NUTS otherwise; ``sampler="prior"`` draws from the prior instead,
for fast tests and for a look at what the priors alone imply.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd

from causalsre.bayes.diagnostics import Diagnostics, diagnose
from causalsre.bayes.encoding import FactorEncoding, aggregate_cells, with_groups
from causalsre.bayes.factors import actionable_in_table, adjustment_factors, graph_view, interaction_pairs
from causalsre.bayes.predict import PosteriorDraws
from causalsre.bayes.priors import Priors
from causalsre.bayes.store import save_fit

MODEL_TYPE = "hierarchical_logistic_burn"
SAMPLERS = ("auto", "nutpie", "pymc", "prior")


def nutpie_available() -> bool:
    return importlib.util.find_spec("nutpie") is not None


def fit_encoding(table: pd.DataFrame, graph: Any, priors: Priors) -> tuple[list[str], FactorEncoding]:
    """(factors, encoding) of a model on ``table``: the graph's adjustment set, knob x load interactions
    read off the graph (when the priors allow them), binned as the priors say. Shared by every model, and by
    loading (a saved fit's configuration hash is recomputed from the same encoding, never by hand)."""
    view = graph_view(graph)
    factors = adjustment_factors(view, table)
    pairs = interaction_pairs(view, factors, table) if priors.coefficients.interactions else []
    encoding = FactorEncoding.fit(table, factors, actionable_in_table(view, table),
                                  max_levels=priors.discretise.max_levels, bins=priors.discretise.bins,
                                  interactions=pairs)
    return factors, encoding


@dataclass
class BayesModel:
    """A model bound to its priors and factor encoding; :meth:`fit` returns InferenceData. Subclasses give
    :attr:`model_type`, :meth:`cells` and :meth:`likelihood`."""

    priors: Priors
    encoding: FactorEncoding
    model_type: ClassVar[str] = ""

    def cells(self, table: pd.DataFrame, aggregate: bool = True) -> pd.DataFrame:
        raise NotImplementedError

    def likelihood(self, cells: pd.DataFrame, eta) -> None:
        """Add the observed variables of ``cells`` given the linear predictor (inside the ``pm.Model``)."""
        raise NotImplementedError

    def build(self, cells: pd.DataFrame):
        model, eta = self.linear_predictor(cells)
        with model:
            self.likelihood(cells, eta)
        return model

    def linear_predictor(self, cells: pd.DataFrame):
        """(model, eta): a ``pm.Model`` holding the intercept, the coefficients and the pooled intercepts, and
        the linear predictor of each cell; :meth:`likelihood` adds the observations inside ``with model``."""
        import pymc as pm

        X, coef_names, _ = self.encoding.design(cells)
        pr = self.priors
        coef_sigma = np.array([pr.coefficients.quadratic_sigma if n.endswith("^2") else
                               pr.coefficients.interaction_sigma if ":" in n else pr.coefficients.sigma
                               for n in coef_names])
        coords = {"coef": coef_names, **{g: sorted(cells[g].unique().tolist()) for g in self.encoding.groups}}
        with pm.Model(coords=coords) as model:
            intercept = pm.Normal("intercept", pr.intercept.mu, pr.intercept.sigma)
            eta = intercept + 0.0
            if coef_names:
                beta = pm.Normal("beta", 0.0, coef_sigma, dims="coef")
                eta = eta + pm.math.dot(X, beta)
            eta = eta + group_effects(cells, self.encoding.groups, pr, coords)
        return model, eta

    def fit(self, table: pd.DataFrame, *, sampler: str = "auto", draws: int | None = None,
            tune: int | None = None, chains: int | None = None, seed: int = 0,
            progress: bool = False, aggregate: bool = True) -> az.InferenceData:
        import pymc as pm

        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}")
        start = time.perf_counter()
        cells = self.cells(table, aggregate)
        model = self.build(cells)
        timings = {"build_s": time.perf_counter() - start, "compile_s": 0.0}
        s = self.priors.sampler
        draws, tune, chains = draws or s.draws, tune or s.tune, chains or s.chains
        if sampler == "auto":
            sampler = "nutpie" if nutpie_available() else "pymc"
        with model:
            sample_start = time.perf_counter()
            if sampler == "prior":
                with warnings.catch_warnings():
                    # The latency model's Potential is its within-cell likelihood (data, not prior): prior
                    # draws rightly leave it out, so PyMC's warning that they do is noise here.
                    warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
                    prior = pm.sample_prior_predictive(draws=draws * chains, random_seed=seed)
                idata = _prior_as_posterior(prior, chains, draws)
            elif sampler == "nutpie":
                import nutpie

                logging.getLogger("pymc").setLevel(logging.ERROR)
                start = time.perf_counter()
                compiled = nutpie.compile_pymc_model(model)
                timings["compile_s"] = time.perf_counter() - start
                idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=chains, seed=seed,
                                      progress_bar=progress, save_warmup=False, target_accept=s.target_accept)
            else:
                idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                                  target_accept=s.target_accept, progressbar=progress, compute_convergence_checks=False)
        # PyMC's NUTS compiles inside pm.sample, so for it sample_s includes compiling.
        timings["sample_s"] = time.perf_counter() - sample_start - timings["compile_s"]
        idata.posterior.attrs.update({k: round(v, 3) for k, v in timings.items()})
        idata.posterior.attrs["sampler"] = sampler
        idata.posterior.attrs["n_cells"] = int(len(cells))
        idata.posterior.attrs["n_requests"] = int(cells["n"].sum())
        return idata


@dataclass
class BurnModel(BayesModel):
    """Bad events per cell: Binomial(n, logistic(eta))."""

    model_type: ClassVar[str] = MODEL_TYPE

    def cells(self, table: pd.DataFrame, aggregate: bool = True) -> pd.DataFrame:
        if aggregate:
            return aggregate_cells(self.encoding, table)
        # One Bernoulli cell per request: the slow baseline the benchmark compares aggregation against.
        cells = with_groups(table, self.encoding.groups)[self.encoding.names + self.encoding.groups].copy()
        for g in self.encoding.groups:
            cells[g] = cells[g].astype(str)
        return cells.assign(n=1, bad=table["is_bad"].astype(bool).astype(int).to_numpy())

    def likelihood(self, cells: pd.DataFrame, eta) -> None:
        import pymc as pm

        pm.Binomial("bad", n=cells["n"].to_numpy(), logit_p=eta, observed=cells["bad"].to_numpy())


@dataclass
class FittedModel:
    """A fit of any model: its InferenceData and encoding, posterior draws (cached per size and seed),
    diagnostics and :meth:`save` (the provenance attributes are attached when fitting)."""

    idata: az.InferenceData
    encoding: FactorEncoding
    _draws: dict = field(default_factory=dict, repr=False, kw_only=True)

    def draws(self, n_draws: int | None = 400, seed: int = 0) -> PosteriorDraws:
        key = (n_draws, seed)
        if key not in self._draws:
            self._draws[key] = PosteriorDraws.from_idata(self.idata, n_draws, seed)
        return self._draws[key]

    def diagnostics(self) -> Diagnostics:
        return diagnose(self.idata)

    def save(self, path: str | Path) -> Path:
        return save_fit(self.idata, path)


def group_effects(cells: pd.DataFrame, groups: list[str], pr: Priors, coords: dict):
    """The pooled random intercepts of ``groups``, summed per cell (call inside a ``pm.Model``)."""
    import pymc as pm

    group_scale = {"run_id": pr.pooling.run_sigma, "window": pr.pooling.window_sigma,
                   "phase": pr.pooling.phase_sigma, "tenant": pr.pooling.tenant_sigma}
    total = 0.0
    for g in groups:
        levels = coords[g]
        if len(levels) < 2:
            continue   # one level is indistinguishable from the intercept
        if len(levels) < pr.pooling.min_levels:
            # Too few levels to learn a spread from: fixed effects, prior SD = the pooling scale.
            pm.Deterministic(f"sigma_{g}", pm.math.constant(group_scale[g], dtype="float64"))
            effect = pm.Normal(f"effect_{g}", 0.0, group_scale[g], dims=g)
        elif cells.groupby(g)["n"].sum().min() >= pr.pooling.centred_min_requests:
            # Every level holds thousands of requests: the data pin each effect down, and the
            # non-centred form would then make the funnel (sigma and z trading off) it avoids
            # with sparse data. Centred is the standard remedy (Betancourt & Girolami 2015).
            sigma = pm.HalfNormal(f"sigma_{g}", group_scale[g])
            effect = pm.Normal(f"effect_{g}", 0.0, sigma, dims=g)
        else:
            sigma = pm.HalfNormal(f"sigma_{g}", group_scale[g])
            z = pm.Normal(f"z_{g}", 0.0, 1.0, dims=g)
            effect = pm.Deterministic(f"effect_{g}", sigma * z, dims=g)
        total = total + effect[pd.Categorical(cells[g], categories=levels).codes]
    return total


def _prior_as_posterior(prior_idata: az.InferenceData, chains: int, draws: int) -> az.InferenceData:
    """Prior draws laid out like a posterior (chains x draws), so every consumer treats them alike."""
    prior = prior_idata.prior
    values, dims, coords = {}, {}, {}
    for name, var in prior.data_vars.items():
        extra = [d for d in var.dims if d not in ("chain", "draw")]
        values[name] = var.values.reshape((chains, draws) + var.values.shape[2:])
        dims[name] = extra
        for d in extra:
            coords[d] = prior.coords[d].values
    return az.from_dict(posterior=values, coords=coords, dims=dims)
