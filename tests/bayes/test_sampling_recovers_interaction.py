"""Real MCMC on data from a known causal model in which a knob matters only under load.

    logit p = -2.5 + 0.2 log(knob/4) + 1.0 load - 1.2 log(knob/4) load + run + window
    (load is 0 in a quiet phase, 1 in a busy phase; the knob varies within both)

The fitted interaction coefficient must recover -1.2 (converted to the model's standardised scale), and
the 90 % predictive interval for a *new* run (fresh run effect, new requests) under do(knob=1) in a busy
window must cover what that new run measures.
"""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalsre.bayes import fit_burn_model, interval

TRUE = {"intercept": -2.5, "knob": 0.2, "load": 1.0, "knob:load": -1.2}
RUN_SD = 0.3


def _simulate(rng, runs, n_per_run, knob_do=None):
    frames = []
    for r in runs:
        shift = rng.normal(0, RUN_SD)
        n = n_per_run
        load = (np.arange(n) >= n // 2).astype(float)
        knob = np.full(n, knob_do) if knob_do is not None else rng.choice([1.0, 2.0, 4.0, 8.0, 16.0], n)
        lk = np.log(knob / 4.0)
        logit = TRUE["intercept"] + TRUE["knob"] * lk + TRUE["load"] * load + TRUE["knob:load"] * lk * load + shift
        frames.append(pd.DataFrame({"run_id": r, "phase": np.where(load > 0, "busy", "quiet"), "knob": knob,
                                    "load": load, "is_bad": rng.random(n) < 1 / (1 + np.exp(-logit))}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.sampling
def test_nuts_recovers_a_knob_by_load_interaction_and_covers_a_new_run():
    rng = np.random.default_rng(7)
    table = _simulate(rng, [f"r{i}" for i in range(6)], 1000)
    graph = nx.DiGraph([("knob", "queue"), ("load", "queue"), ("queue", "is_bad")])
    nx.set_node_attributes(graph, {"knob": {"role": "knob", "actionable": True},
                                   "load": {"role": "workload", "actionable": False},
                                   "queue": {"role": "mediator", "actionable": False}})
    fitted = fit_burn_model(table, graph, slo="s", objective=0.9, db_fingerprint="f", draws=300, tune=300,
                            chains=2, seed=3)
    assert fitted.encoding.interactions == [["knob", "load"]]
    k, f = fitted.encoding.code("knob"), fitted.encoding.code("load")
    assert k.log and not f.log
    # coefficient of z_knob * z_load = true coefficient of log(knob) * load times both scales
    per_unit = fitted.idata.posterior["beta"].sel(coef="knob:load").values.ravel() / (k.scale * f.scale)
    low, high = np.quantile(per_unit, [0.005, 0.995])
    assert low < TRUE["knob:load"] < high and high < 0
    assert abs(np.median(per_unit) - TRUE["knob:load"]) < 0.3
    assert fitted.diagnostics().max_r_hat < 1.05

    # a new run, busy phase, knob held at 1: what it measures lies in the 90 % predictive interval
    new = _simulate(np.random.default_rng(99), ["new"], 800, knob_do=1.0)
    busy_new = new[new["phase"] == "busy"]
    window = table[(table["run_id"] == "r0") & (table["phase"] == "busy")].assign(run_id="new")
    draws = fitted.bad_rate(window.iloc[: len(busy_new)], {"knob": 1.0}, seed=1)
    lo, hi = interval(draws)
    assert lo <= busy_new["is_bad"].mean() <= hi
    # and the knob's effect is far larger under load than in the quiet phase
    quiet = table[table["phase"] == "quiet"].assign(run_id="new")
    busy = table[table["phase"] == "busy"].assign(run_id="new")
    gain_busy = np.median(fitted.bad_rate(busy, {"knob": 1.0}, with_binomial=False)
                          - fitted.bad_rate(busy, {"knob": 16.0}, with_binomial=False))
    gain_quiet = np.median(fitted.bad_rate(quiet, {"knob": 1.0}, with_binomial=False)
                           - fitted.bad_rate(quiet, {"knob": 16.0}, with_binomial=False))
    assert gain_busy > 0.3 and gain_busy > 4 * abs(gain_quiet)
