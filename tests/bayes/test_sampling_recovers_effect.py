"""Real MCMC: the fitted coefficient of a knob recovers the effect it was simulated with."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalsre.bayes import fit_burn_model


@pytest.mark.sampling
def test_nuts_recovers_known_knob_effect():
    rng = np.random.default_rng(11)
    n = 4000
    knob = rng.choice([2.0, 4.0, 8.0, 16.0], n)
    load = rng.choice([0.0, 1.0], n)
    run = rng.choice(["r0", "r1", "r2"], n)
    run_shift = pd.Series(run).map({"r0": -0.3, "r1": 0.0, "r2": 0.3}).to_numpy()
    true_per_log = -0.9                                    # logit change per e-fold of the knob
    logit = -1.0 + true_per_log * np.log(knob / 4.0) + 1.5 * load + run_shift
    table = pd.DataFrame({"run_id": run, "phase": "all", "knob": knob, "load": load,
                          "is_bad": rng.random(n) < 1 / (1 + np.exp(-logit))})
    graph = nx.DiGraph([("knob", "is_bad"), ("load", "is_bad")])
    nx.set_node_attributes(graph, {"knob": {"role": "knob", "actionable": True},
                                   "load": {"role": "workload", "actionable": False}})
    # The priors' own sampler settings (1000 draws after 500 tuning steps): 300 + 300 did not converge on every
    # host (r_hat 1.19 with 35 divergences on a Zen 4 machine, 2026-12-02; 1.007 with the defaults).
    fitted = fit_burn_model(table, graph, slo="s", objective=0.9, db_fingerprint="f", chains=2, seed=5)
    beta = fitted.idata.posterior["beta"]
    scale = fitted.encoding.code("knob").scale              # coefficients are per standard deviation
    slope = (beta.sel(coef="knob") / scale).values.ravel()
    low, high = np.quantile(slope, [0.005, 0.995])
    assert low < true_per_log < high and high < 0
    assert abs(np.median(slope) - true_per_log) < 0.15
    curvature = beta.sel(coef="knob^2").values.ravel()
    assert np.quantile(curvature, 0.05) < 0 < np.quantile(curvature, 0.95)
    assert fitted.diagnostics().max_r_hat < 1.05
