"""Model v2: knob x load interactions from the graph, window random intercepts, new-run predictive draws."""

import arviz as az
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalsre.bayes import fit_burn_model, load_burn_model, load_priors
from causalsre.bayes.api import FittedBurnModel
from causalsre.bayes.encoding import FactorEncoding, with_groups
from causalsre.bayes.factors import graph_view, interaction_pairs
from causalsre.errors import UserError


def test_interaction_pairs_are_co_parents_in_the_graph(serving):
    table, graph = serving
    view = graph_view(graph)
    factors = ["max_num_seqs", "arrival_rate", "cpu_contention", "policy", "prompt_tokens"]
    # max_num_seqs and arrival_rate / cpu_contention share queue_depth_at_arrival; prompt_tokens only meets
    # them at ttft_s through mediators (not a co-parent of a knob); policy is categorical.
    assert interaction_pairs(view, factors, table) == [["max_num_seqs", "arrival_rate"],
                                                      ["max_num_seqs", "cpu_contention"]]
    # a factor that never varies has nothing to interact with
    assert interaction_pairs(view, factors, table.assign(cpu_contention=0.0)) == [["max_num_seqs", "arrival_rate"]]


def test_design_holds_the_product_of_standardised_factors_and_survives_json(serving):
    table, _ = serving
    enc = FactorEncoding.fit(table, ["max_num_seqs", "arrival_rate"], ["max_num_seqs"],
                             interactions=[["max_num_seqs", "arrival_rate"]])
    X, names, owners = enc.design(table)
    assert names[-1] == "max_num_seqs:arrival_rate" and owners[-1] == "max_num_seqs"
    k, f = enc.code("max_num_seqs"), enc.code("arrival_rate")
    np.testing.assert_allclose(X[:, -1], k.transform(table["max_num_seqs"]) * f.transform(table["arrival_rate"]))
    again = FactorEncoding.from_json(enc.to_json())
    assert again.interactions == enc.interactions and again.design(table)[1] == names


def test_groups_are_run_window_tenant_and_two_level_groups_are_fixed(serving):
    table, graph = serving
    fit = fit_burn_model(table, graph, slo="s", objective=0.95, db_fingerprint="f", sampler="prior", draws=20,
                         chains=2, seed=0)
    assert fit.encoding.groups == ["window", "tenant"]      # windows are nested in runs: no run intercept
    post = fit.idata.posterior
    assert post.sizes["window"] == table.groupby(["run_id", "phase"]).ngroups
    assert "z_window" in post and "z_tenant" not in post          # two tenants: fixed effects
    np.testing.assert_allclose(post["sigma_tenant"].values, load_priors().pooling.tenant_sigma)
    assert "effect_phase" not in post and "effect_run_id" not in post
    assert {"max_num_seqs:arrival_rate", "max_num_seqs:cpu_contention"} <= set(map(str, post["coef"].values))


def _fixed(beta: dict, intercept: float, table: pd.DataFrame, pairs, window_sigma=None, draws=200):
    encoding = FactorEncoding.fit(table, ["k", "f"], ["k"], interactions=pairs)
    posterior = {"intercept": np.full((1, draws), intercept), "beta": np.tile(list(beta.values()), (1, draws, 1))}
    coords, dims = {"coef": list(beta)}, {"beta": ["coef"]}
    encoding.groups = []
    if window_sigma is not None:
        encoding.groups = ["window"]
        levels = sorted(with_groups(table, ["window"])["window"].unique())
        posterior["effect_window"] = np.zeros((1, draws, len(levels)))
        posterior["sigma_window"] = np.full((1, draws), window_sigma)
        coords["window"], dims["effect_window"] = levels, ["window"]
    idata = az.from_dict(posterior=posterior, coords=coords, dims=dims)
    return FittedBurnModel(idata, encoding, objective=0.9)


def test_an_interaction_makes_the_knob_matter_only_under_load():
    rng = np.random.default_rng(0)
    n = 4000
    table = pd.DataFrame({"k": rng.choice([1.0, 2.0, 4.0, 8.0], n), "f": rng.choice([0.0, 1.0], n),
                          "is_bad": False, "run_id": "r", "phase": "p"})
    model = _fixed({"k": 0.0, "k^2": 0.0, "f": 0.5, "k:f": -1.5}, -2.0, table, [["k", "f"]])
    quiet, busy = table[table["f"] == 0.0], table[table["f"] == 1.0]
    effect = {name: model.bad_rate(w, {"k": 1.0}, with_binomial=False).mean()
              - model.bad_rate(w, {"k": 8.0}, with_binomial=False).mean() for name, w in (("quiet", quiet), ("busy", busy))}
    # k:f < 0 (no main effect of k): a small k hurts where f is high (busy), the opposite where f is low
    assert effect["busy"] > 0.2 and effect["quiet"] < -0.05


def test_new_run_effect_widens_the_prediction_and_only_when_asked():
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"k": rng.choice([1.0, 2.0, 4.0], 900), "f": rng.normal(0, 1, 900), "is_bad": False,
                          "run_id": rng.choice(["a", "b", "c"], 900), "phase": "p"})
    model = _fixed({"k": 0.3, "k^2": 0.0, "f": 0.3}, -1.0, table, [], window_sigma=1.0, draws=400)
    expected = model.bad_rate(table, with_binomial=False)
    binomial_only = model.bad_rate(table)   # the counterfactual default: the window keeps its intercept
    new_run = model.bad_rate(table, new_run=True)
    assert np.ptp(expected) == pytest.approx(0.0, abs=1e-12)
    assert new_run.std() > 3 * binomial_only.std() > 0
    # the shift is symmetric on the logit scale: the median stays near the expected rate
    assert abs(np.median(new_run) - expected[0]) < 0.05


def test_a_fit_of_another_model_version_is_refused(serving, tmp_path):
    table, graph = serving
    fit = fit_burn_model(table, graph, slo="s", objective=0.95, db_fingerprint="f", sampler="prior", draws=10,
                         chains=1, seed=0)
    fit.idata.posterior.attrs["model_version"] = 1
    path = fit.save(tmp_path / "v1.nc")
    with pytest.raises(UserError, match="v1 fit"):
        load_burn_model(path, table, graph, slo="s", db_fingerprint="f")


def test_interactions_can_be_switched_off_in_the_priors_file(serving, tmp_path):
    table, graph = serving
    text = (load_priors.__globals__["DEFAULT_PRIORS"]).read_text().replace("interactions = true", "interactions = false")
    (tmp_path / "p.toml").write_text(text)
    fit = fit_burn_model(table, graph, slo="s", objective=0.95, db_fingerprint="f", sampler="prior", draws=10,
                         chains=1, seed=0, priors=load_priors(tmp_path / "p.toml"))
    assert fit.encoding.interactions == [] and not any(":" in str(c) for c in fit.idata.posterior["coef"].values)


def test_two_level_tenant_group_with_graph_of_co_parents():
    graph = nx.DiGraph([("k", "is_bad"), ("f", "is_bad")])
    nx.set_node_attributes(graph, {"k": {"role": "knob", "actionable": True}, "f": {"role": "workload"}})
    rng = np.random.default_rng(2)
    table = pd.DataFrame({"k": rng.choice([1.0, 4.0], 200), "f": rng.normal(0, 1, 200), "is_bad": rng.random(200) < 0.2,
                          "run_id": rng.choice(list("abcd"), 200), "phase": "p", "tenant": rng.choice(["x", "y"], 200)})
    fit = fit_burn_model(table, graph, slo="s", objective=0.9, db_fingerprint="f", sampler="prior", draws=10,
                         chains=1, seed=0)
    assert fit.encoding.interactions == [["k", "f"]]
    unseen = table.assign(run_id="new", tenant="z")         # unseen levels draw from their group scale
    assert np.isfinite(fit.bad_rate(unseen, {"k": 4.0})).all()
