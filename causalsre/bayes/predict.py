"""Posterior predictions of the burn model: bad-event rate of a set of requests, under an intervention.

Every prediction is a vector of draws, one per posterior draw, so intervals come out of the same draws.
Two questions, two predictions:

- *Counterfactual* (default, what ``whatif`` answers): what this window would have measured under the
  intervention. The window keeps its own fitted intercept (abduction: the conditions of that stretch of
  time the factors do not explain, its arrivals and its machine, stay), the knob changes, and the window's
  requests get binomial noise. ``whatif --verify`` replays exactly that: the same arrivals on a machine
  whose speed probe matches the recording's.
- *New run* (``new_run=True``): what a fresh run like this window would measure, e.g. next week's traffic
  on another machine. Per posterior draw the whole window's logit also gets one shift drawn from the
  spread of the finest run-level group (``sigma_window``, else ``sigma_run``). Much wider.

A window the model never saw already gets a fresh draw from its group's spread in both modes.
Expected rates (``with_binomial=False``, used by attribution) leave both out.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from causalsre.bayes.encoding import WINDOW, FactorEncoding, aggregate_cells
from causalsre.bayes.factors import OUTCOME

# Which group's spread a new run of a window is drawn from, finest first.
NEW_RUN_GROUPS = (WINDOW, "run_id", "phase")


@dataclass
class PosteriorDraws:
    intercept: np.ndarray                 # (draws,)
    beta: np.ndarray                      # (draws, coef)
    coef_names: list[str]
    effects: dict[str, tuple[list[str], np.ndarray, np.ndarray]]   # group -> (levels, effect[draws, level], sigma)
    noise: np.ndarray | None = None       # (draws,) residual scale of the latency model; None for the burn model

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
        noise = post["sigma"].values[pick] if "sigma" in post else None
        return cls(intercept, beta, names, effects, noise)

    @property
    def n(self) -> int:
        return len(self.intercept)

    def new_run_group(self) -> str | None:
        """The finest run-level group the model has: a new run's shift is drawn from its spread."""
        return next((g for g in NEW_RUN_GROUPS if g in self.effects), None)


def apply_interventions(frame: pd.DataFrame, interventions: dict | None) -> pd.DataFrame:
    if not interventions:
        return frame
    out = frame.copy()
    for knob, value in interventions.items():
        out[knob] = value
    return out


def cell_probabilities(draws: PosteriorDraws, encoding: FactorEncoding, frame: pd.DataFrame,
                       seed: int = 0, new_run: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(p[draws, cells], n[cells]) for the requests in ``frame``: the logistic of :func:`cell_linear_predictor`."""
    eta, n = cell_linear_predictor(draws, encoding, frame, seed, new_run)
    return 1.0 / (1.0 + np.exp(-eta)), n


def cell_linear_predictor(draws: PosteriorDraws, encoding: FactorEncoding, frame: pd.DataFrame,
                          seed: int = 0, new_run: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(eta[draws, cells], n[cells]) for the requests in ``frame``. A run, window or tenant the model never saw
    gets a fresh draw from its group's distribution (that uncertainty belongs in the interval); with
    ``new_run``, every cell also shares one new-run shift per draw (see the module docstring)."""
    if OUTCOME not in frame:
        frame = frame.assign(**{OUTCOME: False})
    cells = aggregate_cells(encoding, frame)
    X, names, _ = encoding.design(cells)
    if names != draws.coef_names:
        raise ValueError(f"design columns {names} differ from the fit's {draws.coef_names}")
    eta = draws.intercept[:, None] + draws.beta @ X.T
    rng = np.random.default_rng(seed)
    new_run_group = draws.new_run_group()
    already_new = np.zeros(len(cells), dtype=bool)   # cells of an unseen window: their fresh draw is the new run
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
                if group == new_run_group:
                    already_new |= rows
    if new_run and new_run_group is not None:
        sigma_new = np.asarray(draws.effects[new_run_group][2], dtype=float)
        shift = sigma_new * np.random.default_rng(seed + 2).standard_normal(draws.n)
        eta[:, ~already_new] += shift[:, None]
    return eta, cells["n"].to_numpy()


def bad_rate_draws(draws: PosteriorDraws, encoding: FactorEncoding, frame: pd.DataFrame, *,
                   interventions: dict | None = None, with_binomial: bool = True, new_run: bool = False,
                   seed: int = 0) -> np.ndarray:
    """Draws of the bad-event rate of ``frame``'s requests, under ``interventions`` (knob -> value).

    ``with_binomial`` (default): what these requests would measure (binomial noise of their count);
    otherwise the expected rate. ``new_run`` adds the new-run shift (see the module docstring)."""
    p, n = cell_probabilities(draws, encoding, apply_interventions(frame, interventions), seed, new_run)
    if with_binomial:
        bad = np.random.default_rng(seed + 1).binomial(n[None, :], p).sum(axis=1)
    else:
        bad = (p * n[None, :]).sum(axis=1)
    return bad / n.sum()


def interval(values: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)
