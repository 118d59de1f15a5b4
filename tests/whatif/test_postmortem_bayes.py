"""`postmortem --fit`: the Bayesian burn model's attribution beside the graph-based one."""

import json

from causalsre.cli.main import main

from .conftest import SLO


def test_postmortem_shows_the_posterior_attribution_beside_the_shapley_one(suite_db, tmp_path, capsys):
    fit_path = tmp_path / "fit.nc"
    base = ["--db", str(suite_db), "--slo", str(SLO)]
    assert main(["fit", *base, "--sampler", "prior", "--draws", "40", "--chains", "2", "--out", str(fit_path),
                 "--json"]) == 0
    capsys.readouterr()
    windows = ["--baseline", "phase:baseline@push_max_num_seqs-s0", "--incident", "phase:incident@push_max_num_seqs-s0"]
    report = tmp_path / "pm.json"
    assert main(["postmortem", *base, *windows, "--fit", str(fit_path), "--pairs", "200", "--json",
                 "--out", str(report)]) == 0
    capsys.readouterr()
    result = json.loads(report.read_text())
    bayes = result["bayes_attribution"]
    factors = [row["factor"] for row in bayes["rows"]]
    assert factors[0] == "total" and factors[-1] == "remainder" and "max_num_seqs" in factors
    assert all(row["low"] <= row["burn_change"] <= row["high"] for row in bayes["rows"])
    # a prior fit says so, and the knob pushed in the incident is the only knob that changed: the others add 0
    assert bayes["diagnostics"]["sampler"] == "prior"
    unchanged = [row for row in bayes["rows"] if row["factor"] in ("chunk_size", "num_kv_blocks", "policy")]
    assert unchanged and all(abs(row["burn_change"]) < 1e-9 for row in unchanged)
    assert result["attributions"], "the graph-based attribution is still there"


def test_postmortem_text_lists_both_attributions(suite_db, tmp_path, capsys):
    fit_path = tmp_path / "fit.nc"
    base = ["--db", str(suite_db), "--slo", str(SLO)]
    assert main(["fit", *base, "--sampler", "prior", "--draws", "30", "--chains", "2", "--out", str(fit_path)]) == 0
    capsys.readouterr()
    out_md = tmp_path / "pm.md"
    assert main(["postmortem", *base, "--baseline", "phase:baseline@kv_shrink-s0", "--incident",
                 "phase:incident@kv_shrink-s0", "--fit", str(fit_path), "--pairs", "200", "--out", str(out_md)]) == 0
    text = capsys.readouterr().out
    assert "contributions (95% bootstrap interval)" in text and "Bayesian burn model" in text
    assert "Beside it: the Bayesian burn model" in out_md.read_text()
