"""One build loop for every dataset: `harness suite` (harness/suite.py) and the vLLM suite (harness/peers/suite.py)
run their scenarios through the same `build_dataset`. Runs are synthetic here (a known two-phase run written
through the schema per scenario), so the loop itself is checked: ids, truth, SLO checks, compaction, manifest."""

from __future__ import annotations

import json

import duckdb
import pytest

from causalsre.causal.synthetic import SyntheticSpec, write_synthetic
from harness.scenarios import load_scenario

SCENARIOS = ["push_max_num_seqs", "rate_surge"]


def _write(database, run_id: str, seed: int) -> str:
    """A stand-in for the engine: one seeded synthetic run of 2 x 20 s into the suite's database."""
    write_synthetic(database, SyntheticSpec(fault="max_num_seqs", phase_s=20.0, seed=seed, run_id=run_id))
    return run_id


def _synthetic_run(index, name, cfg, database):
    return _write(database, f"{name}-s0", index)


def _phase_counts(db, run_id):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("SELECT phase, count(*) FROM request_metrics WHERE run_id = ? GROUP BY phase",
                                [run_id]).fetchall())
    finally:
        con.close()


def test_the_build_loop_runs_checks_compacts_and_describes(tmp_path):
    from harness.suite import build_dataset

    checked, trimmed = [], []
    scenarios = [(name, load_scenario(name), load_scenario(name)) for name in SCENARIOS]
    manifest = build_dataset(tmp_path, scenarios, _synthetic_run, seed=0, command="rebuild me",
                             describe=lambda: {"hardware": {"device": "cpu"}},
                             check=lambda name, entry, truth, slo: checked.append((name, slo.objective)),
                             before_compact=trimmed.append)
    assert list(manifest) == ["schema_version", "built_at", "database", "seed", "hardware", "rebuild_command",
                              "scenarios"]
    assert manifest["rebuild_command"] == "rebuild me" and [n for n, _ in checked] == SCENARIOS
    assert len(trimmed) == 1 and not trimmed[0].exists()  # the partial file, gone once moved into place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "suite.duckdb", "truth.json"]
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["push_max_num_seqs"]["root_cause_factors"] == ["max_num_seqs"]
    assert truth["rate_surge"]["root_cause_factors"] == ["arrival_rate"]
    for name in SCENARIOS:
        run_id = truth[name]["run_id"]
        counts = _phase_counts(tmp_path / "suite.duckdb", run_id)
        check = truth[name]["slo_check"]
        assert run_id == f"{name}-s0" and manifest["scenarios"][name]["slo_check"] == check
        assert {phase: c["requests"] for phase, c in check.items()} == counts and counts["incident"] > 0
        assert 0 <= check["incident"]["good_fraction"] <= 1


def test_the_vllm_suite_builds_through_the_same_loop(tmp_path, monkeypatch):
    """The vLLM suite's own parts (design check, tokens dropped, engine and load in the manifest) on the shared
    loop, with the vLLM runs replaced by synthetic ones."""
    import harness.http_run
    import harness.peers.vllm_server
    from harness.peers.suite import build_vllm_suite

    monkeypatch.setattr(harness.peers.vllm_server, "unavailable_reason", lambda: None)
    monkeypatch.setattr(harness.http_run, "run_http", lambda cfg, database, seed, engine, run_id:
                        _write(database, run_id, seed))
    with pytest.raises(Exception, match="unknown vLLM scenario"):
        build_vllm_suite(tmp_path / "x", names=["nope"])
    manifest = build_vllm_suite(tmp_path, names=["control"])
    entry = manifest["scenarios"]["control"]
    assert entry["run_id"] == "control-vllm-s0" and entry["slo_check"]["incident"]["requests"] > 0
    assert isinstance(entry["design_met"], bool) and manifest["tokens_kept"] is False
    assert manifest["engine"].startswith("vllm") and len(manifest["load_average"]) == 3
    con = duckdb.connect(str(tmp_path / "suite.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM requests").fetchone()[0] > 0
    finally:
        con.close()
