"""``bayes_paired_split``: the window's excess split between two recorded changes by the model's factor effects.

A two-knob burn model with hand-set posterior draws stands in for a fit: both knobs changed between the
baseline and the incident window, whose intercept holds a +2.5 excess. The model's factor effects say which
knob acts (beta -1.5 on max_num_seqs: fewer sequences, more bad; 0 on chunk_size), so reverting the other one keeps the excess: the split
covers that world with a narrower interval than the uniform share, and misses the world where the excess is
the other knob's (so the test can fail).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.bayes.encoding import FactorEncoding
from causalsre.bayes.paired import kept_share, paired_bad_rate
from causalsre.bayes.predict import PosteriorDraws

N, EXCESS = 40, 2.5
KNOBS = {"max_num_seqs": (16.0, 1.0), "chunk_size": (64.0, 16.0)}   # baseline -> incident


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def _tables():
    rows = []
    for phase, k in (("baseline", 0), ("incident", 1)):
        rows += [{"run_id": "r0", "phase": phase, **{name: values[k] for name, values in KNOBS.items()},
                  "is_bad": i % 4 == 0} for i in range(N)]
    table = pd.DataFrame(rows)
    return table, table[table.phase == "incident"].reset_index(drop=True), table[table.phase == "baseline"]


class _Stub:
    def __init__(self, table, betas, n=400, seed=0):
        rng = np.random.default_rng(seed)
        names = list(KNOBS)
        self.encoding = FactorEncoding.fit(table, names, names)
        small = lambda: 0.05 * rng.standard_normal(n)
        effects = {"window": (["r0/baseline", "r0/incident"], np.column_stack([small(), EXCESS + small()]),
                              np.full(n, 1.0))}
        beta = np.column_stack([b + small() for b in betas])
        self._draws = PosteriorDraws(-2.0 + small(), beta, names, effects)
        self.betas = betas

    def draws(self, n_draws=None, seed=0):
        return self._draws

    def eta(self, values: dict, excess: float) -> float:
        z = [self.encoding.code(k).transform(pd.Series([values[k]]))[0] for k in KNOBS]
        return -2.0 + sum(b * x for b, x in zip(self.betas, z)) + excess


BASELINE = {k: v[0] for k, v in KNOBS.items()}
INCIDENT = {k: v[1] for k, v in KNOBS.items()}


def _score(model, window, revert: dict, *, kept_in_world: float, split: bool, trials=40):
    """Coverage and median width of the 90 % interval over replays of a world where the window keeps
    ``kept_in_world`` of its excess under ``revert`` (the replay session: no shift, as on the modelled clock)."""
    rng, hits, widths = np.random.default_rng(5), 0, []
    values = {**INCIDENT, **revert}
    for t in range(trials):
        unchanged_bad = int(rng.binomial(N, _logistic(model.eta(INCIDENT, EXCESS))))
        measured = rng.binomial(N, _logistic(model.eta(values, EXCESS * kept_in_world))) / N
        draws = paired_bad_rate(model, window, revert, unchanged_bad=unchanged_bad, unchanged_n=N, absorbed=True,
                                revert_all=dict(BASELINE) if split else None, seed=t, n_samples=600)
        low, high = np.quantile(draws, [0.05, 0.95])
        hits += low <= measured <= high
        widths.append(high - low)
    return hits / trials, float(np.median(widths))


def test_the_split_follows_the_factor_effects_and_narrows_a_partial_revert():
    table, window, _ = _tables()
    model = _Stub(table, betas=(-1.5, 0.0))
    share = kept_share(model.draws(), model.encoding, window, {"chunk_size": 64.0}, BASELINE)
    assert np.median(share) > 0.95            # chunk_size explains nothing: the excess stays
    share = kept_share(model.draws(), model.encoding, window, {"max_num_seqs": 16.0}, BASELINE)
    assert np.median(share) < 0.05            # max_num_seqs explains all of it: the excess leaves
    cover_split, width_split = _score(model, window, {"chunk_size": 64.0}, kept_in_world=1.0, split=True)
    cover_uniform, width_uniform = _score(model, window, {"chunk_size": 64.0}, kept_in_world=1.0, split=False)
    assert cover_split >= 0.8
    assert width_split < width_uniform - 0.1
    # The world the model's effects contradict (the excess was chunk_size's after all): the split misses it.
    cover_wrong, _ = _score(model, window, {"chunk_size": 64.0}, kept_in_world=0.0, split=True)
    assert cover_wrong < 0.5


def test_no_split_without_factor_effects_to_split_by():
    table, window, _ = _tables()
    model = _Stub(table, betas=(0.0, 0.0))
    share = kept_share(model.draws(), model.encoding, window, {"chunk_size": 64.0}, BASELINE)
    assert 0.4 < np.median(share) < 0.6 and np.quantile(share, 0.05) < 0.1 and np.quantile(share, 0.95) > 0.9
