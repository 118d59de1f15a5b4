"""Posterior attribution: which factors account for the change in burn between two windows.

For each factor, the counterfactual is the second window's requests with that factor drawn as in the
first window (all else kept). Its contribution is the drop in the expected bad-event rate, in burn units,
computed for every posterior draw, so each contribution has a credible interval. The parts need not add up
to the total (factors interact on the probability scale, and runs/phases differ); the remainder is shown
as such rather than spread over the factors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.bayes.encoding import FactorEncoding
from causalsre.bayes.predict import PosteriorDraws, bad_rate_draws, interval


def attribute_burn_change(draws: PosteriorDraws, encoding: FactorEncoding, before: pd.DataFrame,
                          after: pd.DataFrame, *, objective: float, seed: int = 0) -> pd.DataFrame:
    """One row per factor plus 'total' and 'remainder': burn-rate contribution with a 90 % interval."""
    budget = 1.0 - objective
    rate_before = bad_rate_draws(draws, encoding, before, with_binomial=False, seed=seed)
    rate_after = bad_rate_draws(draws, encoding, after, with_binomial=False, seed=seed)
    total = (rate_after - rate_before) / budget
    rng = np.random.default_rng(seed)
    rows, explained = [], np.zeros_like(total)
    for name in encoding.names:
        swapped = after.copy()
        swapped[name] = before[name].sample(len(after), replace=True, random_state=rng).to_numpy()
        rate_swapped = bad_rate_draws(draws, encoding, swapped, with_binomial=False, seed=seed)
        contribution = (rate_after - rate_swapped) / budget
        explained += contribution
        rows.append((name, contribution))
    rows.append(("remainder", total - explained))
    rows.insert(0, ("total", total))
    out = []
    for name, values in rows:
        low, high = interval(values)
        out.append({"factor": name, "burn_change": float(np.median(values)), "low": low, "high": high})
    table = pd.DataFrame(out)
    body = table.iloc[1:-1].sort_values("burn_change", key=np.abs, ascending=False)
    return pd.concat([table.iloc[[0]], body, table.iloc[[-1]]], ignore_index=True)
