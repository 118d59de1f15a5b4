import json

import arviz as az
import numpy as np
import pandas as pd
import pytest

from causalsre.bayes.api import FittedBurnModel
from causalsre.bayes.encoding import FactorEncoding
from causalsre.cli.main import main
from causalsre.whatif.recommend import recommend

from .conftest import SLO


def test_recommend_ranks_the_knob_value_the_model_prefers():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"knob": rng.choice([2.0, 4.0, 8.0], 600), "load": rng.normal(0, 1, 600), "is_bad": False})
    encoding = FactorEncoding.fit(table, ["knob", "load"], ["knob"])
    encoding.groups = []
    names = ["knob", "knob^2", "load"]
    idata = az.from_dict(posterior={"intercept": np.full((1, 30), -2.0),
                                    "beta": np.tile([-1.5, 0.0, 0.5], (1, 30, 1))},
                         coords={"coef": names}, dims={"beta": ["coef"]})
    model = FittedBurnModel(idata, encoding, objective=0.9)
    window = table[table["knob"] == 2.0]
    ranking = recommend(model, table, window, ["knob"], objective=0.9)
    assert [r["intervention"] for r in ranking] == [{"knob": 8.0}, {"knob": 4.0}]
    assert ranking[0]["high"] < ranking[1]["low"] or ranking[0]["burn_rate"] < ranking[1]["burn_rate"]


def test_replay_config_holds_the_knob_for_the_whole_window(suite_db):
    from causalsre.whatif.verify import intervened_config

    cfg = intervened_config(suite_db, "push_max_num_seqs-s0", "incident", {"max_num_seqs": 12.0})
    assert cfg.engine.max_num_seqs == 12
    pushes = [f for f in cfg.faults if f.kind == "config_push"]
    assert all("max_num_seqs" not in f.knobs for f in pushes)
    same = intervened_config(suite_db, "push_max_num_seqs-s0", "incident", {"chunk_size": 32.0})
    assert any(f.kind == "config_push" and "max_num_seqs" in f.knobs for f in same.faults)


def test_cli_fit_prior_then_whatif_json(suite_db, tmp_path, capsys):
    fit_path = tmp_path / "fit.nc"
    base = ["--db", str(suite_db), "--slo", str(SLO)]
    assert main(["fit", *base, "--sampler", "prior", "--draws", "50", "--chains", "2", "--out", str(fit_path),
                 "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["diagnostics"]["sampler"] == "prior" and fitted["saved"] == str(fit_path)
    code = main(["whatif", *base, "--fit", str(fit_path), "--window", "phase:incident@push_max_num_seqs-s0",
                 "--set", "max_num_seqs=16", "--method", "bayes", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"intervention", "observed", "predicted", "verified"} <= set(report)
    assert report["intervention"] == {"max_num_seqs": 16.0} and report["verified"] is None
    bayes = report["predicted"]["bayes"]
    assert set(bayes) == {"burn_rate", "low", "high", "bad_rate"} and bayes["low"] <= bayes["burn_rate"] <= bayes["high"]
    assert report["observed"] == pytest.approx(report["observed_bad_rate"] / (1 - 0.99))


def test_cli_user_errors_are_one_line(suite_db, tmp_path, capsys):
    base = ["--db", str(suite_db), "--slo", str(SLO)]
    assert main(["whatif", *base, "--window", "phase:incident", "--set", "arrival_rate=3", "--method", "gcm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: arrival_rate is not an actionable knob") and "\n" not in err
    junk = tmp_path / "other.nc"
    junk.write_text("x")
    assert main(["recommend", *base, "--fit", str(junk), "--window", "phase:incident"]) == 2
    assert "not a saved fit" in capsys.readouterr().err


@pytest.mark.slow
def test_verify_replays_the_same_requests_with_the_knob_changed(suite_db, tmp_path):
    """A real harness replay: same arrivals (same request count), knob held at the new value throughout."""
    import duckdb

    from causalsre.whatif.context import Context
    from causalsre.whatif.verify import verify

    ctx = Context.open(suite_db, SLO)
    try:
        window = "phase:baseline@push_max_num_seqs-s0"
        expected = len(ctx.table(window))
        out = tmp_path / "replay.duckdb"
        result = verify(ctx, window, {"max_num_seqs": 8.0}, out_db=out)
    finally:
        ctx.close()
    assert result["requests"] == expected
    assert 0.0 <= result["bad_rate"] <= 1.0
    assert result["burn_rate"] == pytest.approx(result["bad_rate"] / (1 - 0.99))
    con = duckdb.connect(str(out), read_only=True)
    values = con.execute("SELECT DISTINCT value FROM run_settings WHERE setting = 'max_num_seqs'").fetchall()
    con.close()
    assert values == [(8.0,)]
    # Both the recording and the replay carry a speed probe, so the replay says how their machines compare.
    # (any positive ratio: the shipped suite was recorded on a host about 5x slower than some that run this test)
    assert result["speed_ratio"] is not None and 0.0 < result["speed_ratio"] < float("inf")


def test_speed_ratio_and_its_warning():
    from causalsre.whatif.verify import speed_ratio, speed_warning

    assert speed_ratio([10.0, 20.0], [5.0, 10.0]) == pytest.approx(2.0)
    assert speed_ratio([10.0], [40.0]) == pytest.approx(0.25)
    assert speed_ratio([10.0, None], [5.0, 5.0]) is None and speed_ratio([], []) is None
    assert speed_warning(1.2) is None and speed_warning(1 / 1.2) is None
    assert "2.00x faster" in speed_warning(2.0) and "2.00x slower" in speed_warning(0.5)
    assert "no speed probe" in speed_warning(None)
