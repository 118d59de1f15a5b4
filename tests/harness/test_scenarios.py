"""The shipped scenarios: enough of them, every family covered, causes named as in the causal graph."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from causalsre.errors import UserError
from harness.scenarios import list_scenarios, load_scenario, scenario_truth

GRAPH_FACTORS = {
    "batching": {"max_num_seqs", "max_num_batched_tokens", "chunk_size", "enable_chunked_prefill", "policy",
                 "batching_mode", "num_kv_blocks"},
    "hardware": {"num_threads", "cpu_contention", "step_delay_s", "dtype", "device"},
    "workload": {"arrival_rate", "burstiness", "prompt_tokens", "output_tokens", "tenant"},
}
DATASET = Path(__file__).resolve().parents[2] / "datasets" / "cpu-tiny"


def test_suite_covers_every_family_with_single_and_two_cause_scenarios():
    truths = [scenario_truth(load_scenario(name)) for name in list_scenarios()]
    assert len(truths) >= 8
    for t in truths:
        assert 1 <= len(t["root_cause_factors"]) <= 2
        for fault in t["faults"]:
            assert fault["factor"] in GRAPH_FACTORS[fault["family"]]
        names = [p["name"] for p in t["phases"]]
        assert names == ["baseline", "incident"]
        incident = t["phases"][1]
        assert all(f["start_s"] >= incident["start_s"] for f in t["faults"])  # baseline is fault-free
    single = {t["families"][0] for t in truths if len(t["root_cause_factors"]) == 1}
    assert single == set(GRAPH_FACTORS)
    assert sum(len(t["root_cause_factors"]) == 2 for t in truths) >= 2


def test_scenario_inheritance_and_unknown_names(tmp_path):
    cfg = load_scenario("push_max_num_seqs")
    assert cfg.engine.max_num_seqs == 16 and cfg.faults[0].knobs == {"max_num_seqs": 1}
    assert cfg.workload.load_fraction == 0.4  # from _base
    with pytest.raises(UserError, match="unknown scenario"):
        load_scenario("_base")
    loop = tmp_path / "loop.toml"
    loop.write_text('extends = "loop"\n')
    with pytest.raises(UserError, match="bad extends"):
        load_scenario(loop)


def test_shipped_dataset_matches_the_scenarios_and_burns_in_the_incident():
    if not (DATASET / "truth.json").exists():
        pytest.skip("datasets/cpu-tiny not built")
    truth = json.loads((DATASET / "truth.json").read_text())
    manifest = json.loads((DATASET / "manifest.json").read_text())
    con = duckdb.connect(str(DATASET / manifest["database"]), read_only=True)
    for name, entry in truth.items():
        expected = scenario_truth(load_scenario(name))
        assert entry["root_cause_factors"] == expected["root_cause_factors"]
        rows = con.execute("SELECT factor FROM faults WHERE run_id = ?", [entry["run_id"]]).fetchall()
        assert sorted({r[0] for r in rows}) == entry["root_cause_factors"]
        check = entry["slo_check"]
        assert check["incident"]["good_fraction"] < check["baseline"]["good_fraction"]
    con.close()


def test_run_scenario_records_its_phases_and_ground_truth(tmp_path):
    from harness.scenarios import run_scenario

    short = {"duration_s": 2.0, "drain_timeout_s": 2.0, "workload.load_fraction": None, "workload.rate": 4.0,
             "phases": [{"name": "baseline", "start_s": 0, "end_s": 1}, {"name": "incident", "start_s": 1, "end_s": 2}],
             "faults": [{"kind": "config_push", "at_s": 1.0, "knobs": {"max_num_seqs": 1}}]}
    db = tmp_path / "s.duckdb"
    run_id = run_scenario("push_max_num_seqs", db, seed=2, overrides=short)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT name, seed, status FROM runs").fetchone() == ("push_max_num_seqs", 2, "complete")
    assert con.execute("SELECT kind, family, factor FROM faults").fetchall() == [
        ("config_push", "batching", "max_num_seqs")]
    assert [r[0] for r in con.execute("SELECT name FROM phases ORDER BY start_ns").fetchall()] == ["baseline",
                                                                                                  "incident"]
    assert con.execute("SELECT count(DISTINCT tenant) FROM requests").fetchone()[0] == 2
    con.close()
    assert run_id.startswith("push_max_num_seqs-s2-")
