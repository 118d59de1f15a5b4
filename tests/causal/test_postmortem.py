"""postmortem: a known structural causal model with one changed factor must rank that factor first."""

from __future__ import annotations

import json

import pytest

from causalsre.causal import load_graph
from causalsre.causal.postmortem import OTHER, postmortem
from causalsre.cli.main import main
from causalsre.errors import UserError
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window

SLO_YAML = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: fast}
spec:
  service: test
  indicator:
    metadata: {name: e2e}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: causalsre, spec: {conditions: [{metric: e2e_s, op: lte, value: 1.2}]}}}
        total: {metricSource: {type: causalsre}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""
FAST = dict(n_pairs=600, n_boot=100, top_requests=2)


def _run(path, seed=0, slo=None, **kwargs):
    con = connect_readonly(path)
    try:
        return postmortem(con, slo, parse_window("phase:baseline", con), parse_window("phase:incident", con),
                          load_graph(), seed=seed, **{**FAST, **kwargs})
    finally:
        con.close()


@pytest.mark.parametrize("fault,family", [("cpu_contention", "hardware"), ("max_num_seqs", "batching"),
                                          ("step_delay_s", "hardware")])
def test_changed_factor_ranks_first_and_contributions_sum(make_db, fault, family):
    result = _run(make_db(fault=fault, phase_s=60.0))
    factors = [a for a in result["attributions"] if a["factor"] != OTHER]
    assert factors[0]["factor"] == fault
    assert factors[0]["family"] == family and factors[0]["ci_low"] > 0
    total = sum(a["contribution"] for a in result["attributions"])
    assert total == pytest.approx(result["total_change"], abs=1e-9)
    assert result["total_change"] > 0.05
    # Causes first (largest first), then unexplained changes of engine state and outcomes, then the residual.
    rank = {"cause": 0, "unexplained": 1, "residual": 2}
    keys = [(rank[a["role"]], -a["contribution"]) for a in result["attributions"]]
    assert keys == sorted(keys) and result["attributions"][-1]["factor"] == OTHER
    assert sum(f["contribution"] for f in result["families"]) == pytest.approx(result["total_change"], abs=1e-9)
    assert result["anomalous_requests"][0]["attributions"][0]["factor"] == fault


def test_seeded_runs_are_reproducible(make_db):
    path = make_db(fault="cpu_contention", phase_s=40.0)
    first, second = _run(path, seed=3), _run(path, seed=3)
    assert first["attributions"] == second["attributions"]


def test_no_bad_events_is_nothing_to_attribute(make_db):
    result = _run(make_db(fault="none", phase_s=30.0, timeout_s=100.0))
    assert result["nothing_to_attribute"] and result["attributions"] == []


def test_overlapping_windows_are_refused(make_db):
    con = connect_readonly(make_db(phase_s=30.0))
    with pytest.raises(UserError, match="overlap"):
        postmortem(con, None, parse_window("run:synthetic", con), parse_window("phase:incident", con), load_graph())
    con.close()


def test_cli_json_with_a_real_slo(make_db, tmp_path, capsys):
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO_YAML)
    db = make_db(fault="cpu_contention", phase_s=40.0)
    out = tmp_path / "pm.json"
    code = main(["postmortem", "--db", str(db), "--slo", str(slo), "--baseline", "phase:baseline",
                 "--incident", "phase:incident", "--json", "--pairs", "300", "--out", str(out)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["burn"]) == {"baseline", "incident"}
    assert result["burn"]["incident"]["burn_rate"] > result["burn"]["baseline"]["burn_rate"]
    assert {"factor", "family", "contribution", "ci_low", "ci_high"} <= set(result["attributions"][0])
    assert result["n_baseline"] > 0 and result["n_incident"] > 0 and result["graph"].endswith("serving.yaml")
    assert json.loads(out.read_text())["attributions"] == result["attributions"]
    bad = ["postmortem", "--db", str(db), "--slo", str(slo), "--baseline", "2026-01-01T01:00:00Z/2026-01-01T00:00:00Z",
           "--incident", "phase:incident"]
    assert main(bad) == 2
    assert "ends before it starts" in capsys.readouterr().err


def test_an_incident_that_burned_less_says_it_explains_an_improvement(make_db, tmp_path, capsys):
    # Windows swapped: the "incident" is the healthy phase, so there is no burn to explain, only a drop.
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO_YAML)
    db = make_db(fault="cpu_contention", phase_s=40.0)
    argv = ["postmortem", "--db", str(db), "--slo", str(slo), "--pairs", "300"]
    assert main(argv + ["--baseline", "phase:incident", "--incident", "phase:baseline"]) == 0
    swapped = capsys.readouterr().out
    assert "burned less than the baseline" in swapped and "explain an improvement" in swapped
    assert main(argv + ["--baseline", "phase:baseline", "--incident", "phase:incident"]) == 0
    assert "burned less than the baseline" not in capsys.readouterr().out
