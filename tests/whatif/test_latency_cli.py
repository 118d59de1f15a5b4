"""`whatif --latency`: p50/p90 of a latency under the intervention, beside the burn prediction."""

import json

import pytest

from causalsre.cli.main import main

from .conftest import SLO


@pytest.mark.slow
@pytest.mark.sampling
def test_whatif_latency_predicts_quantiles_and_sees_the_knob(suite_db, tmp_path, capsys):
    fit_path = tmp_path / "fit.nc"
    base = ["--db", str(suite_db), "--slo", str(SLO)]
    assert main(["fit", *base, "--sampler", "prior", "--draws", "40", "--chains", "2", "--out", str(fit_path)]) == 0
    capsys.readouterr()
    report = tmp_path / "whatif.md"
    assert main(["whatif", *base, "--fit", str(fit_path), "--method", "bayes", "--window",
                 "phase:incident@push_max_num_seqs-s0", "--set", "max_num_seqs=16", "--latency", "ttft_s",
                 "--latency-draws", "300", "--json",
                 "--out", str(report)]) == 0
    latency = json.loads(capsys.readouterr().out)["latency"]
    assert latency["metric"] == "ttft_s" and latency["verified"] is None
    p90 = latency["predicted"]["p90"]
    assert p90["low"] <= p90["value"] <= p90["high"]
    # max_num_seqs=1 queued the incident for seconds; back at 16 the served requests' p90 TTFT drops a lot
    assert p90["value"] < 0.25 * latency["observed"]["p90"]
    assert "of the served requests under the intervention" in report.read_text()


def test_latency_draws_without_latency_is_refused(suite_db, capsys):
    code = main(["whatif", "--db", str(suite_db), "--slo", str(SLO), "--window", "phase:incident@push_max_num_seqs-s0",
                 "--set", "max_num_seqs=16", "--latency-draws", "300"])
    err = capsys.readouterr().err
    assert code == 2 and "--latency-draws" in err and "--latency METRIC" in err and "Traceback" not in err
