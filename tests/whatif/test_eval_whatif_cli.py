"""`causalsre eval whatif` as a user runs it: one case, replayed for real, scored per method and per set."""

import json

import pytest

from causalsre.cli.main import main

from .conftest import SLO


@pytest.mark.slow
def test_eval_whatif_replays_a_case_and_scores_it(suite_db, tmp_path, capsys):
    fit_path = tmp_path / "fit.nc"
    base = ["--db", str(suite_db), "--slo", str(SLO)]
    assert main(["fit", *base, "--sampler", "prior", "--draws", "40", "--chains", "2", "--out", str(fit_path)]) == 0
    capsys.readouterr()
    assert main(["eval", "whatif", *base, "--fit", str(fit_path), "--limit", "1", "--latency", "none", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    case = report["cases"][0]
    assert case["window"] == "phase:incident@push_max_num_seqs-s0" and case["case_set"] == "development"
    assert set(case["predicted"]) == {"gcm", "bayes", "bayes_new_run", "no_change"}
    # the case and its no-change control were both replayed, on a machine the speed probe compares
    assert case["verified"]["requests"] == 142 and case["replayed_no_change"] is not None
    assert case["verified"]["speed_ratio"] is not None and report["replay_speed_ratio"]["median"] > 0
    assert set(report["scores"]) == {"gcm", "bayes", "bayes_new_run", "no_change", "replay_drift"}
    assert report["scores_by_set"]["development"]["bayes"]["cases"] == 1
    assert report["latency_scores"] is None and report["latency_diagnostics"] is None
