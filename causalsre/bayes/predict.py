"""Posterior predictions of the burn model: bad-event rate of a set of requests, under an intervention.

Every prediction is a vector of draws, one per posterior draw, so intervals come out of the same draws.
``with_binomial`` adds the sampling noise of a finite window (a replay of 2,000 requests has its own
luck), which is what a verification run is compared against.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from causalsre.bayes.encoding import FactorEncoding, aggregate_cells
from causalsre.bayes.factors import OUTCOME


@dataclass
class PosteriorDraws:
    intercept: np.ndarray                 # (draws,)
    beta: np.ndarray                      # (draws, coef)
    coef_names: list[str]
    effects: dict[str, tuple[list[str], np.ndarray, np.ndarray]]   # group -> (levels, effect[draws, level], sigma)

    @classmethod
    def from_idata(cls, idata: az.InferenceData, n_draws: int | None = None, seed: int = 0) -> PosteriorDraws:
        post = idata.posterior.stack(sample=("chain", "draw"))
        total = post.sizes["sample"]
        pick = np.arange(total)
        if n_draws is not None and n_draws < total:
            pick = np.sort(np.random.default_rng(seed).choice(total, n_draws, replace=False))
        intercept = post["intercept"].values[pick]
        if "beta" in post:
            beta = post["beta"].transpose("sample", "coef").values[pick]
            names = [str(c) for c in post["coef"].values]
        else:
            beta, names = np.zeros((len(pick), 0)), []
        effects = {}
        for var in post.data_vars:
            if var.startswith("effect_"):
                group = var.removeprefix("effect_")
                levels = [str(v) for v in post[group].values]
                eff = post[var].transpose("sample", group).values[pick]
                effects[group] = (levels, eff, post[f"sigma_{group}"].values[pick])
        return cls(intercept, beta, names, effects)

    @property
    def n(self) -> int:
        return len(self.intercept)


def apply_interventions(frame: pd.DataFrame, interventions: dict | None) -> pd.DataFrame:
    if not interventions:
        return frame
    out = frame.copy()
    for knob, value in interventions.items():
        out[knob] = value
    return out


def cell_probabilities(draws: PosteriorDraws, encoding: FactorEncoding, frame: pd.DataFrame,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(p[draws, cells], n[cells]) for the requests in ``frame``. A run, phase or tenant the model never saw
    gets a fresh draw from its group's distribution (that uncertainty belongs in the interval)."""
    if OUTCOME not in frame:
        frame = frame.assign(**{OUTCOME: False})
    cells = aggregate_cells(encoding, frame)
    X, names, _ = encoding.design(cells)
    if names != draws.coef_names:
        raise ValueError(f"design columns {names} differ from the fit's {draws.coef_names}")
    eta = draws.intercept[:, None] + draws.beta @ X.T
    rng = np.random.default_rng(seed)
    for group, (levels, eff, sigma) in draws.effects.items():
        if group not in cells:
            continue
        lookup = {level: i for i, level in enumerate(levels)}
        for level in cells[group].unique():
            rows = (cells[group] == level).to_numpy()
            if level in lookup:
                eta[:, rows] += eff[:, lookup[level]][:, None]
            else:
                eta[:, rows] += (sigma * rng.standard_normal(draws.n))[:, None]
    return 1.0 / (1.0 + np.exp(-eta)), cells["n"].to_numpy()


def bad_rate_draws(draws: PosteriorDraws, encoding: FactorEncoding, frame: pd.DataFrame, *,
                   interventions: dict | None = None, with_binomial: bool = True, seed: int = 0) -> np.ndarray:
    """Draws of the bad-event rate of ``frame``'s requests, under ``interventions`` (knob -> value)."""
    p, n = cell_probabilities(draws, encoding, apply_interventions(frame, interventions), seed)
    if with_binomial:
        bad = np.random.default_rng(seed + 1).binomial(n[None, :], p).sum(axis=1)
    else:
        bad = (p * n[None, :]).sum(axis=1)
    return bad / n.sum()


def interval(values: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)
