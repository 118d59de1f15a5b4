"""eval scenarios: scoring rules on hand-made results, and a hand-made truth file over synthetic telemetry."""

from __future__ import annotations

import json

import pytest

from causalsre.causal.postmortem import OTHER
from causalsre.causal.synthetic import SyntheticSpec, write_synthetic
from causalsre.cli.main import main
from causalsre.evaluation.score import names_a_cause, score_case, summarize
from harness.merge import copy_runs


def _row(factor, low, high, contribution=None):
    return {"factor": factor, "family": "x", "contribution": (low + high) / 2 if contribution is None
            else contribution, "ci_low": low, "ci_high": high}


@pytest.mark.parametrize("rows, named", [
    ([_row("cpu_contention", 0.1, 0.3), _row(OTHER, -0.01, 0.02)], "cpu_contention"),
    ([_row("cpu_contention", -0.01, 0.3), _row(OTHER, -0.01, 0.02)], None),      # interval holds 0
    ([_row(OTHER, 0.2, 0.4), _row("cpu_contention", 0.01, 0.05)], None),          # "other" is not a cause
    ([], None),
])
def test_names_a_cause(rows, named):
    assert names_a_cause({"attributions": rows}) == named


def test_a_burn_that_fell_names_no_cause():
    # A knob change that helped (the incident burned significantly less) is no false alarm on a control: the
    # postmortem says "no burn to blame" and its contributions say what lowered the bad-event rate.
    rows = [_row("max_num_seqs", -0.6, -0.3)]
    assert names_a_cause({"attributions": rows}) == "max_num_seqs"
    assert names_a_cause({"attributions": rows, "burn_fell": "the bad-event rate fell ..."}) is None


def test_score_case_and_summary():
    result = {"attributions": [_row("arrival_rate", 0.2, 0.4), _row(OTHER, 0.0, 0.1), _row("max_num_seqs", 0.0, 0.1)],
              "families": [{"family": "workload"}, {"family": "batching"}]}
    mix = score_case("mix", {"root_cause_factors": ["arrival_rate", "max_num_seqs"],
                             "families": ["batching", "workload"]}, result)
    wrong = score_case("wrong", {"root_cause_factors": ["chunk_size"], "families": ["batching"]}, result)
    control = score_case("calm", {"root_cause_factors": [], "families": []}, result)
    assert (mix["top1"], mix["top3"], mix["family_top1"]) == (True, True, True)
    assert (wrong["top1"], wrong["top3"], wrong["family_top1"]) == (False, False, False)
    assert control["control"] and control["false_alarm"] and control["named_cause"] == "arrival_rate"
    summary = summarize([dict(r, seconds=1.0) for r in (mix, wrong, control)])
    assert summary["top1"] == 0.5 and summary["fault_scenarios"] == 2 and summary["false_alarm_rate"] == 1.0


@pytest.mark.slow
def test_hand_made_truth_file_is_scored_from_the_cli(tmp_path, capsys):
    db = tmp_path / "suite" / "telemetry.duckdb"
    db.parent.mkdir()
    for run_id, fault in (("cpu", "cpu_contention"), ("seqs", "max_num_seqs")):
        write_synthetic(tmp_path / f"{run_id}.duckdb", SyntheticSpec(fault=fault, seed=3, phase_s=60.0, run_id=run_id))
    copy_runs([tmp_path / "cpu.duckdb", tmp_path / "seqs.duckdb"], db)
    truth = {
        "cpu_contention": {"run_id": "cpu", "root_cause_factors": ["cpu_contention"], "families": ["hardware"]},
        "max_num_seqs": {"run_id": "seqs", "root_cause_factors": ["max_num_seqs"], "families": ["batching"]},
        # the same run under a wrong label: must count as a miss
        "mislabelled": {"run_id": "cpu", "root_cause_factors": ["arrival_rate"], "families": ["workload"]},
    }
    (db.parent / "truth.json").write_text(json.dumps(truth))
    assert main(["eval", "scenarios", "--data", str(db.parent), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    by_name = {r["scenario"]: r for r in result["cases"]}
    assert by_name["cpu_contention"]["top1"] and by_name["max_num_seqs"]["top1"]
    assert not by_name["mislabelled"]["top1"] and not by_name["mislabelled"]["family_top1"]
    assert result["top1"] == pytest.approx(2 / 3) and result["controls"] == 0 and result["false_alarm_rate"] is None
    assert all(r["seconds"] >= 0 for r in result["cases"])


def test_bad_truth_file_is_a_user_error(tmp_path, capsys):
    (tmp_path / "truth.json").write_text(json.dumps({"x": {"scenario": "x"}}))
    assert main(["eval", "scenarios", "--data", str(tmp_path)]) == 2
    assert "lack run_id" in capsys.readouterr().err
