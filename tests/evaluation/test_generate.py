"""eval generate end to end: a tiny suite recorded with the real engine, checked against its own database."""

from __future__ import annotations

import json

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

pytestmark = pytest.mark.slow  # three real recordings (~15 s each on a quiet machine, plus any re-draws)

SEED = 18  # plan: a control, a max_num_seqs push, a tenant flood with a KV shrink (quick to burn budget)

BAD_RATE_SQL = """
SELECT avg(CASE WHEN is_ok AND ttft_s <= ? AND (tpot_s IS NULL OR tpot_s <= ?) THEN 0.0 ELSE 1.0 END)
FROM request_metrics WHERE run_id = ? AND phase = ?
"""


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "suite"
    code = main(["eval", "generate", "--seed", str(SEED), "--count", "3", "--out", str(out), "--phase-s", "6", "7",
                 "--json"])
    assert code == 0
    return out


def test_truth_matches_the_faults_table_and_every_fault_burns(suite):
    truth = json.loads((suite / "truth.json").read_text())
    manifest = json.loads((suite / "manifest.json").read_text())
    assert set(truth) == set(manifest["scenarios"]) and truth
    con = connect_readonly(suite / "suite.duckdb")
    try:
        assert sorted(r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()) == \
            sorted(case["run_id"] for case in truth.values())  # re-drawn attempts never reach the suite
        for name, case in truth.items():
            faults = con.execute("SELECT kind, family, factor FROM faults WHERE run_id = ? ORDER BY fault_id",
                                 [case["run_id"]]).fetchall()
            assert sorted(faults) == sorted((f["kind"], f["family"], f["factor"]) for f in case["faults"])
            assert sorted({f[2] for f in faults}) == case["root_cause_factors"]
            assert sorted({f[1] for f in faults}) == case["families"]
            counts = dict(con.execute("SELECT phase, count(*) FROM request_metrics WHERE run_id = ? GROUP BY phase",
                                      [case["run_id"]]).fetchall())
            assert min(counts.get("baseline", 0), counts.get("incident", 0)) >= 5, name
            slo = case["slo"]
            bad = {p: con.execute(BAD_RATE_SQL, [slo["ttft_s"], slo["tpot_s"], case["run_id"], p]).fetchone()[0]
                   for p in ("baseline", "incident")}
            margin = 1 - slo["objective"]
            if case["root_cause_factors"]:
                assert bad["incident"] - bad["baseline"] >= margin, name
            else:
                assert case["shape"] == "control" and abs(bad["incident"] - bad["baseline"]) < margin, name
    finally:
        con.close()


def test_manifest_records_seed_ranges_draws_and_redraws(suite):
    manifest = json.loads((suite / "manifest.json").read_text())
    assert manifest["seed"] == SEED and manifest["count"] == 3
    assert "config_push:max_num_seqs" in manifest["ranges"]["kinds"]
    redraws = 0
    for entry in manifest["scenarios"].values():
        assert entry["redraws"] == len(entry["attempts"]) - 1
        assert entry["attempts"][-1]["burn_check"]["ok"]
        assert all(not a["burn_check"]["ok"] for a in entry["attempts"][:-1])
        assert 6 <= entry["drawn"]["base"]["baseline_s"] <= 7
        redraws += entry["redraws"]
    assert manifest["redraws"]["total"] == redraws + sum(len(d["attempts"]) - 1 for d in manifest["dropped"])
    assert len(manifest["scenarios"]) + len(manifest["dropped"]) == 3


def test_an_existing_suite_is_not_overwritten(suite, capsys):
    assert main(["eval", "generate", "--seed", "1", "--count", "3", "--out", str(suite)]) == 2
    assert "already holds a suite" in capsys.readouterr().err
