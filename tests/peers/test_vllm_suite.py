"""The vLLM scenario suite: its configs say what they inject, run on the peer as they are, and the shipped
dataset (datasets/vllm-cpu-tiny) is in the layout `causalsre eval scenarios --data` scores."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from causalsre.cli.main import main
from harness.http_run import check_http_config
from harness.peers.suite import SCENARIO_DIR, design_met, list_vllm_scenarios
from harness.peers.vllm_server import vllm_args
from harness.scenarios import load_scenario, scenario_truth

DATASET = Path(__file__).resolve().parents[2] / "datasets" / "vllm-cpu-tiny"
EXPECTED = {"control": [], "cpu_contention": ["cpu_contention"], "longer_prompts": ["prompt_tokens"],
            "push_max_num_seqs": ["max_num_seqs"], "rate_surge": ["arrival_rate"]}


def test_each_scenario_injects_its_cause_and_runs_on_the_peer_as_written():
    assert list_vllm_scenarios() == sorted(EXPECTED)
    for name, factors in EXPECTED.items():
        cfg = load_scenario(SCENARIO_DIR / f"{name}.toml")
        assert scenario_truth(cfg)["root_cause_factors"] == factors
        check_http_config(cfg, managed=True)  # nothing the peer cannot do (no step_delay, no load_fraction)
        vllm_args(cfg.engine)
        assert [p.name for p in cfg.phases] == ["baseline", "incident"]


def test_design_check_wants_a_good_baseline_and_a_bad_incident():
    good, bad = {"good_fraction": 0.95}, {"good_fraction": 0.4}
    assert design_met({"baseline": good, "incident": bad}, 0.9, control=False)
    assert not design_met({"baseline": bad, "incident": bad}, 0.9, control=False)  # already burning
    assert not design_met({"baseline": good, "incident": good}, 0.9, control=False)  # the fault did nothing
    assert design_met({"baseline": good, "incident": good}, 0.9, control=True)


def test_an_unknown_scenario_is_one_line_exit_2(capsys):
    from harness.peers.suite import main as suite_main

    assert suite_main(["/tmp/never-built", "--only", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.skipif(not (DATASET / "truth.json").is_file(), reason="datasets/vllm-cpu-tiny is not built")
def test_the_shipped_dataset_has_every_scenarios_run_and_its_truth():
    truth = json.loads((DATASET / "truth.json").read_text())
    manifest = json.loads((DATASET / "manifest.json").read_text())
    assert sorted(truth) == sorted(EXPECTED) and {n: t["root_cause_factors"] for n, t in truth.items()} == EXPECTED
    con = duckdb.connect(str(DATASET / "suite.duckdb"), read_only=True)
    try:
        runs = dict(con.execute("SELECT run_id, hardware_json FROM runs").fetchall())
        samples = dict(con.execute("SELECT run_id, count(*) FROM metric_samples GROUP BY run_id").fetchall())
    finally:
        con.close()
    for name, case in truth.items():
        assert json.loads(runs[case["run_id"]])["engine"] == "vllm"
        if manifest.get("metric_samples_kept"):  # the 2026-12-01 build predates keeping them (datasets.md)
            assert samples[case["run_id"]] > 0
        assert manifest["scenarios"][name]["run_id"] == case["run_id"]
    assert sum(p.stat().st_size for p in DATASET.iterdir()) < 5_000_000


@pytest.mark.slow
@pytest.mark.skipif(not (DATASET / "truth.json").is_file(), reason="datasets/vllm-cpu-tiny is not built")
def test_eval_scenarios_scores_the_shipped_vllm_suite(capsys):
    assert main(["eval", "scenarios", "--data", str(DATASET), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fault_scenarios"] == 4 and result["controls"] == 1
    assert {c["scenario"] for c in result["cases"]} == set(EXPECTED)
