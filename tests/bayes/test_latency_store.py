"""The latency model saves and loads like the burn model (provenance checked), and a sampled fit is cached
by a fingerprint of its data, so ``whatif --latency`` and ``eval whatif`` do not refit it."""

from __future__ import annotations

import numpy as np
import pytest

from causalsre.bayes import BayesModel, BurnModel, FittedModel, load_burn_model
from causalsre.bayes.latency import LatencyModel, fit_latency_model, load_latency_model
from causalsre.errors import UserError
from tests.bayes.test_latency import _graph, _simulate


def test_two_small_subclasses_of_one_base():
    assert issubclass(BurnModel, BayesModel) and issubclass(LatencyModel, BayesModel)
    assert not issubclass(LatencyModel, BurnModel)
    assert BurnModel.model_type != LatencyModel.model_type


def test_latency_fit_saves_and_loads_with_the_same_predictions(tmp_path):
    table = _simulate(np.random.default_rng(3), ["a", "b", "c"], 80)
    fitted = fit_latency_model(table, _graph(), sampler="prior", draws=40, chains=2, seed=1)
    assert isinstance(fitted, FittedModel)
    path = fitted.save(tmp_path / "latency.nc")
    loaded = load_latency_model(path, table, _graph(), metric="ttft_s")
    window = table[(table["run_id"] == "a") & (table["phase"] == "incident")]
    assert loaded.predict(window, {"knob": 16.0}, seed=2) == fitted.predict(window, {"knob": 16.0}, seed=2)
    assert loaded.diagnostics() == fitted.diagnostics()
    assert loaded.idata.posterior.attrs["metric"] == "ttft_s"
    with pytest.raises(UserError, match="different database"):
        load_latency_model(path, table.iloc[:-5], _graph(), metric="ttft_s")   # other data
    with pytest.raises(UserError, match="not hierarchical_logistic_burn"):
        load_burn_model(path, table, _graph(), slo="s", db_fingerprint=loaded.idata.posterior.attrs["db_fingerprint"])


def test_a_sampled_latency_fit_is_cached_and_reused(tmp_path, monkeypatch):
    """The second fit of the same rows loads the first (no sampling); other rows or another seed refit."""
    calls = []
    original = LatencyModel.fit

    def counted(self, rows, **kwargs):
        calls.append(kwargs["seed"])
        idata = original(self, rows, **{**kwargs, "sampler": "prior"})   # prior draws stand in for NUTS
        idata.posterior.attrs["sampler"] = "nutpie"
        return idata

    monkeypatch.setattr(LatencyModel, "fit", counted)
    table = _simulate(np.random.default_rng(4), ["a", "b"], 60)
    window = table[table["phase"] == "incident"]
    first = fit_latency_model(table, _graph(), sampler="nutpie", draws=30, chains=2, seed=0)
    again = fit_latency_model(table, _graph(), sampler="nutpie", draws=30, chains=2, seed=0)
    assert calls == [0]
    assert again.predict(window, {"knob": 2.0}) == first.predict(window, {"knob": 2.0})
    fit_latency_model(table, _graph(), sampler="nutpie", draws=30, chains=2, seed=1)
    fit_latency_model(table.assign(ttft_s=table["ttft_s"] * 2), _graph(), sampler="nutpie", draws=30, chains=2)
    fit_latency_model(table, _graph(), sampler="nutpie", draws=30, chains=2, seed=0, cache=False)
    assert calls == [0, 1, 0, 0]
    assert len(list((tmp_path / "cache" / "fits").glob("latency-ttft_s-*.nc"))) == 3
