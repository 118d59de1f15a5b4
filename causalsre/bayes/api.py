"""The burn model's public entry points: fit, save, load and predict, in terms the CLI and others use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from causalsre.bayes.model import BurnModel, FittedModel, fit_encoding
from causalsre.bayes.predict import bad_rate_draws
from causalsre.bayes.priors import Priors, load_priors
from causalsre.bayes.store import attach_provenance, encoding_of, load_fit

__all__ = ["FittedBurnModel", "config_hash", "fit_burn_model", "fit_encoding", "load_burn_model", "slo_key"]


def slo_key(slo: Any) -> str:
    """What identifies an SLO for a fit: its name, objective and good-event conditions."""
    if isinstance(slo, str):
        return slo
    return repr((getattr(slo, "name", None), getattr(slo, "objective", None), getattr(slo, "conditions", None)))


def config_hash(priors: Priors, factors: list[str], slo: Any, interactions: list | None = None) -> str:
    return priors.config_hash(sorted(factors), slo_key(slo), sorted(map(list, interactions or [])))


@dataclass
class FittedBurnModel(FittedModel):
    """A burn-model fit: draws of the bad-event and burn rate of a set of requests under an intervention."""

    objective: float

    def bad_rate(self, frame: pd.DataFrame, interventions: dict | None = None, *, with_binomial: bool = True,
                 new_run: bool = False, n_draws: int | None = 400, seed: int = 0) -> np.ndarray:
        return bad_rate_draws(self.draws(n_draws, seed), self.encoding, frame, interventions=interventions,
                              with_binomial=with_binomial, new_run=new_run, seed=seed)

    def burn_rate(self, frame: pd.DataFrame, interventions: dict | None = None, **kwargs) -> np.ndarray:
        return self.bad_rate(frame, interventions, **kwargs) / (1.0 - self.objective)


def _burn_config(table: pd.DataFrame, graph: Any, priors: Priors, slo: Any):
    """(encoding, configuration hash) of the burn model on ``table``: fitting and loading share it."""
    factors, encoding = fit_encoding(table, graph, priors)
    return encoding, config_hash(priors, factors, slo, encoding.interactions)


def fit_burn_model(table: pd.DataFrame, graph: Any, *, slo: Any, objective: float, db_fingerprint: str,
                   priors: Priors | None = None, sampler: str = "auto", draws: int | None = None,
                   tune: int | None = None, chains: int | None = None, seed: int = 0,
                   progress: bool = False) -> FittedBurnModel:
    """Fit the hierarchical burn model on an analysis table (one row per request, with ``is_bad``)."""
    priors = priors or load_priors()
    encoding, hashed = _burn_config(table, graph, priors, slo)
    idata = BurnModel(priors, encoding).fit(table, sampler=sampler, draws=draws, tune=tune, chains=chains,
                                            seed=seed, progress=progress)
    attach_provenance(idata, version=priors.model.version, config_hash=hashed, db_fingerprint=db_fingerprint,
                      encoding=encoding, model_type=BurnModel.model_type, slo_name=slo_key(slo),
                      slo_objective=float(objective))
    return FittedBurnModel(idata, encoding, objective)


def load_burn_model(path: str | Path, table: pd.DataFrame, graph: Any, *, slo: Any, db_fingerprint: str,
                    priors: Priors | None = None) -> FittedBurnModel:
    """Load a saved fit for this database, graph, SLO and priors; anything else is refused."""
    priors = priors or load_priors()
    _, hashed = _burn_config(table, graph, priors, slo)
    idata = load_fit(path, version=priors.model.version, config_hash=hashed, db_fingerprint=db_fingerprint,
                     model_type=BurnModel.model_type)
    return FittedBurnModel(idata, encoding_of(idata), float(idata.posterior.attrs["slo_objective"]))
