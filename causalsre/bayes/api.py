"""The burn model's public entry points: fit, save, load and predict, in terms the CLI and others use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd

from causalsre.bayes.diagnostics import Diagnostics, diagnose
from causalsre.bayes.encoding import FactorEncoding
from causalsre.bayes.factors import actionable_in_table, adjustment_factors, graph_view, interaction_pairs
from causalsre.bayes.model import BurnModel
from causalsre.bayes.predict import PosteriorDraws, bad_rate_draws
from causalsre.bayes.priors import Priors, load_priors
from causalsre.bayes.store import attach_provenance, encoding_of, load_fit, save_fit


def slo_key(slo: Any) -> str:
    """What identifies an SLO for a fit: its name, objective and good-event conditions."""
    if isinstance(slo, str):
        return slo
    return repr((getattr(slo, "name", None), getattr(slo, "objective", None), getattr(slo, "conditions", None)))


def config_hash(priors: Priors, factors: list[str], slo: Any, interactions: list | None = None) -> str:
    return priors.config_hash(sorted(factors), slo_key(slo), sorted(map(list, interactions or [])))


@dataclass
class FittedBurnModel:
    idata: az.InferenceData
    encoding: FactorEncoding
    objective: float
    _draws: dict = field(default_factory=dict, repr=False)

    def draws(self, n_draws: int | None = 400, seed: int = 0) -> PosteriorDraws:
        key = (n_draws, seed)
        if key not in self._draws:
            self._draws[key] = PosteriorDraws.from_idata(self.idata, n_draws, seed)
        return self._draws[key]

    def bad_rate(self, frame: pd.DataFrame, interventions: dict | None = None, *, with_binomial: bool = True,
                 new_run: bool = False, n_draws: int | None = 400, seed: int = 0) -> np.ndarray:
        return bad_rate_draws(self.draws(n_draws, seed), self.encoding, frame, interventions=interventions,
                              with_binomial=with_binomial, new_run=new_run, seed=seed)

    def burn_rate(self, frame: pd.DataFrame, interventions: dict | None = None, **kwargs) -> np.ndarray:
        return self.bad_rate(frame, interventions, **kwargs) / (1.0 - self.objective)

    def diagnostics(self) -> Diagnostics:
        return diagnose(self.idata)

    def save(self, path: str | Path) -> Path:
        return save_fit(self.idata, path)


def fit_encoding(table: pd.DataFrame, graph: Any, priors: Priors) -> tuple[list[str], FactorEncoding]:
    """(factors, encoding) of a model on ``table``: the graph's adjustment set, knob x load interactions
    read off the graph (when the priors allow them), binned as the priors say. Shared by every model."""
    view = graph_view(graph)
    factors = adjustment_factors(view, table)
    pairs = interaction_pairs(view, factors, table) if priors.coefficients.interactions else []
    encoding = FactorEncoding.fit(table, factors, actionable_in_table(view, table),
                                  max_levels=priors.discretise.max_levels, bins=priors.discretise.bins,
                                  interactions=pairs)
    return factors, encoding


def fit_burn_model(table: pd.DataFrame, graph: Any, *, slo: Any, objective: float, db_fingerprint: str,
                   priors: Priors | None = None, sampler: str = "auto", draws: int | None = None,
                   tune: int | None = None, chains: int | None = None, seed: int = 0,
                   progress: bool = False) -> FittedBurnModel:
    """Fit the hierarchical burn model on an analysis table (one row per request, with ``is_bad``)."""
    priors = priors or load_priors()
    factors, encoding = fit_encoding(table, graph, priors)
    idata = BurnModel(priors, encoding).fit(table, sampler=sampler, draws=draws, tune=tune, chains=chains,
                                            seed=seed, progress=progress)
    attach_provenance(idata, version=priors.model.version,
                      config_hash=config_hash(priors, factors, slo, encoding.interactions),
                      db_fingerprint=db_fingerprint, encoding=encoding, slo_name=slo_key(slo), objective=objective)
    return FittedBurnModel(idata, encoding, objective)


def load_burn_model(path: str | Path, table: pd.DataFrame, graph: Any, *, slo: Any, db_fingerprint: str,
                    priors: Priors | None = None) -> FittedBurnModel:
    """Load a saved fit for this database, graph, SLO and priors; anything else is refused."""
    priors = priors or load_priors()
    view = graph_view(graph)
    factors = adjustment_factors(view, table)
    pairs = interaction_pairs(view, factors, table) if priors.coefficients.interactions else []
    idata = load_fit(path, version=priors.model.version, config_hash=config_hash(priors, factors, slo, pairs),
                     db_fingerprint=db_fingerprint)
    return FittedBurnModel(idata, encoding_of(idata), float(idata.posterior.attrs["slo_objective"]))
