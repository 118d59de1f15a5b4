import arviz as az
import numpy as np
import pandas as pd
import pytest

from causalsre.bayes import attribute_burn_change, fit_burn_model, load_burn_model
from causalsre.bayes.api import FittedBurnModel
from causalsre.bayes.encoding import FactorEncoding
from causalsre.errors import UserError


@pytest.fixture(scope="module")
def prior_fit(serving):
    table, graph = serving
    return fit_burn_model(table, graph, slo="latency", objective=0.95, db_fingerprint="db-a",
                          sampler="prior", draws=50, chains=2, seed=1)


def test_prior_fit_has_posterior_shape_and_honest_diagnostics(prior_fit):
    post = prior_fit.idata.posterior
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 50
    assert {"intercept", "beta", "effect_window", "effect_tenant"} <= set(post.data_vars)
    diag = prior_fit.diagnostics()
    assert diag.max_r_hat is None and not diag.ok and "prior draws only" in diag.warnings[0]


def test_save_load_roundtrip_and_refusals(prior_fit, serving, tmp_path):
    table, graph = serving
    path = prior_fit.save(tmp_path / "fit.nc")
    loaded = load_burn_model(path, table, graph, slo="latency", db_fingerprint="db-a")
    window = table[table["phase"] == "incident"]
    np.testing.assert_allclose(loaded.bad_rate(window, seed=2), prior_fit.bad_rate(window, seed=2))
    with pytest.raises(UserError, match="different database"):
        load_burn_model(path, table, graph, slo="latency", db_fingerprint="db-b")
    with pytest.raises(UserError, match="other priors, graph factors or SLO"):
        load_burn_model(path, table, graph, slo="availability", db_fingerprint="db-a")
    with pytest.raises(UserError, match="other priors, graph factors or SLO"):
        load_burn_model(path, table.drop(columns=["policy"]), graph, slo="latency", db_fingerprint="db-a")
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(UserError, match="not a saved fit"):
        load_burn_model(tmp_path / "junk.nc", table, graph, slo="latency", db_fingerprint="db-a")


def _fixed_model(beta: dict[str, float], intercept: float, table: pd.DataFrame, draws: int = 40) -> FittedBurnModel:
    """A 'posterior' whose every draw has the given coefficients: predictions are then known exactly."""
    encoding = FactorEncoding.fit(table, list(beta), [])
    encoding.groups = []
    posterior = {"intercept": np.full((1, draws), intercept),
                 "beta": np.tile(np.array(list(beta.values())), (1, draws, 1))}
    idata = az.from_dict(posterior=posterior, coords={"coef": list(beta)}, dims={"beta": ["coef"]})
    return FittedBurnModel(idata, encoding, objective=0.99)


def test_prediction_equals_the_logistic_formula():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x": rng.normal(0, 2, 500), "c": rng.choice([0.0, 1.0], 500), "is_bad": False})
    model = _fixed_model({"x": 0.8, "c": -0.5}, -1.0, table)
    x = model.encoding.code("x")
    c = model.encoding.code("c")
    z_x = (table["x"] - x.center) / x.scale
    z_c = (1.0 - c.center) / c.scale               # intervention c := 1
    expected = np.mean(1 / (1 + np.exp(-(-1.0 + 0.8 * z_x - 0.5 * z_c))))
    # x has > 8 distinct values, so cells use bin means: exact only for the (linear-in-bin) logit mean
    got = model.bad_rate(table, {"c": 1.0}, with_binomial=False)
    assert np.allclose(got, got[0])
    assert got[0] == pytest.approx(expected, rel=0.03)
    noisy = model.bad_rate(table, {"c": 1.0}, with_binomial=True, n_draws=None)
    assert noisy.std() > 0 and abs(noisy.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / 500)


def test_attribution_credits_the_factor_that_changed():
    rng = np.random.default_rng(1)
    n = 2000
    before = pd.DataFrame({"load": rng.normal(0, 1, n), "noise": rng.normal(0, 1, n), "is_bad": False})
    after = before.assign(load=before["load"] + 2.0)
    model = _fixed_model({"load": 1.2, "noise": 0.7}, -3.0, pd.concat([before, after]))
    table = attribute_burn_change(model.draws(), model.encoding, before, after, objective=0.99, seed=3)
    rows = table.set_index("factor")
    assert table["factor"].iloc[0] == "total" and table["factor"].iloc[1] == "load"
    assert rows.loc["total", "burn_change"] > 1
    assert rows.loc["load", "burn_change"] == pytest.approx(rows.loc["total", "burn_change"], rel=0.1)
    assert abs(rows.loc["noise", "burn_change"]) < 0.05 * rows.loc["total", "burn_change"]
