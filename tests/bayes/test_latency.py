"""The log-latency model: cell sufficient statistics, a known effect recovered, bad input refused."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalsre.bayes.encoding import FactorEncoding
from causalsre.bayes.latency import LatencyModel, fit_latency_model, observed_quantiles, served
from causalsre.bayes.priors import load_priors
from causalsre.bayes.latency import LATENCY_PRIORS
from causalsre.errors import UserError

TRUE = {"intercept": -1.0, "log_knob": -0.6, "load": 0.4, "sigma": 0.5}


def _graph():
    graph = nx.DiGraph([("knob", "queue"), ("load", "queue"), ("queue", "ttft_s")])
    nx.set_node_attributes(graph, {"knob": {"role": "knob", "actionable": True},
                                   "load": {"role": "workload", "actionable": False},
                                   "queue": {"role": "mediator", "actionable": False},
                                   "ttft_s": {"role": "outcome", "actionable": False}})
    return graph


def _simulate(rng, runs, n, knob_do=None):
    frames = []
    for r in runs:
        shift = rng.normal(0, 0.2)
        for phase in ("baseline", "incident"):
            knob = np.full(n, knob_do) if knob_do else rng.choice([2.0, 4.0, 8.0, 16.0], n)
            load = rng.choice([0.0, 1.0, 2.0], n)
            log_y = (TRUE["intercept"] + TRUE["log_knob"] * np.log(knob) + TRUE["load"] * load + shift
                     + TRUE["sigma"] * rng.standard_normal(n))
            frames.append(pd.DataFrame({"run_id": r, "phase": phase, "knob": knob, "load": load,
                                        "ttft_s": np.exp(log_y), "is_bad": False}))
    return pd.concat(frames, ignore_index=True)


def test_cells_carry_the_per_request_likelihood():
    """Aggregated cells (n, mean, within-cell SS) and one cell per request give the same log-likelihood up
    to a constant: their differences between two parameter points agree."""
    table = _simulate(np.random.default_rng(0), ["a", "b", "c"], 60)
    encoding = FactorEncoding.fit(table, ["knob", "load"], ["knob"])
    model = LatencyModel(load_priors(LATENCY_PRIORS), encoding, "ttft_s")
    aggregated, per_request = model.cells(table), model.cells(table, aggregate=False)
    assert len(aggregated) < len(per_request) == len(table) and aggregated["n"].sum() == len(table)
    logps = []
    for cells in (aggregated, per_request):
        pm_model = model.build(cells)
        logp = pm_model.compile_logp()
        point = pm_model.initial_point()
        other = {k: v + 0.3 for k, v in point.items()}
        logps.append(logp(point) - logp(other))
    assert logps[0] == pytest.approx(logps[1], rel=1e-9)


def test_bad_metrics_and_empty_windows_are_user_errors():
    table = _simulate(np.random.default_rng(1), ["a"], 10)
    with pytest.raises(UserError, match="unknown latency metric"):
        served(table, "latency")
    with pytest.raises(UserError, match="no ttft_s column"):
        served(table.drop(columns="ttft_s"), "ttft_s")
    with pytest.raises(UserError, match="only 0 requests"):
        fit_latency_model(table.assign(ttft_s=np.nan), _graph(), sampler="prior", draws=10, chains=1)
    assert observed_quantiles(table.assign(ttft_s=0.0), "ttft_s") is None


@pytest.mark.sampling
def test_nuts_recovers_the_knob_effect_on_log_latency_and_predicts_a_new_window():
    rng = np.random.default_rng(5)
    table = _simulate(rng, [f"r{i}" for i in range(4)], 400)
    fitted = fit_latency_model(table, _graph(), chains=2, seed=2)   # the priors' sampler: 300 + 300 draws did
    # not converge on every host (r_hat 1.07 on a Zen 4 machine, 2026-12-02)
    assert fitted.diagnostics().max_r_hat < 1.05
    code = fitted.encoding.code("knob")
    assert code.log
    beta = fitted.idata.posterior["beta"]
    linear = beta.sel(coef="knob").values.ravel() / code.scale          # per unit of log(knob)
    low, high = np.quantile(linear, [0.005, 0.995])
    assert low < TRUE["log_knob"] < high and high < 0
    sigma = fitted.idata.posterior["sigma"].values.ravel()
    assert abs(np.median(sigma) - TRUE["sigma"]) < 0.05
    # do(knob = 16) in one recorded window: the p90 the simulator gives lies in the predicted 90 % interval
    window = table[(table["run_id"] == "r0") & (table["phase"] == "incident")]
    truth = _simulate(np.random.default_rng(9), ["r0"], 20000, knob_do=16.0)
    predicted = fitted.predict(window, {"knob": 16.0})
    assert predicted["p90"]["low"] <= np.quantile(truth["ttft_s"], 0.9) * 1.25
    assert predicted["p90"]["high"] >= np.quantile(truth["ttft_s"], 0.9) * 0.8
    slower = fitted.predict(window, {"knob": 2.0})
    assert slower["p90"]["value"] > 2 * predicted["p90"]["value"]   # e^(0.6 ln 8) = 3.5x in truth
