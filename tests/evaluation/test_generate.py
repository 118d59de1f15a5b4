"""eval generate end to end: a tiny suite recorded with the real engine, checked against its own database, and
`eval whatif --data` on that same suite: a reverted cause replayed for real (and replayed unchanged: the paired
control), scored in burn points, and a rerun served from the replay cache. One module, so the three recordings
are made once (they were made twice, here and in tests/whatif, the suite's slowest fixture each time)."""

from __future__ import annotations

import json
import shutil

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

pytestmark = pytest.mark.slow  # three real recordings (~15 s each on a quiet machine, plus any re-draws)
                               # and one replayed case

SEED = 18  # plan: a control, a max_num_seqs push, a tenant flood with a KV shrink (quick to burn budget)

BAD_RATE_SQL = """
SELECT avg(CASE WHEN is_ok AND ttft_s <= ? AND (tpot_s IS NULL OR tpot_s <= ?) THEN 0.0 ELSE 1.0 END)
FROM request_metrics WHERE run_id = ? AND phase = ?
"""


class Interrupted(Exception):
    pass


INTERRUPTED: dict = {}   # what the first sitting left on disk, for the resume test


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """The suite recorded in two sittings, as a long one killed midway and finished with --resume: the first
    stops as scenario 1 starts (an interruption the progress callback raises), the CLI finishes it. Every test
    below then checks the finished suite, so a resume that lost or doubled a scenario fails them."""
    from causalsre.evaluation.generate import generate_suite

    out = tmp_path_factory.mktemp("gen") / "suite"
    args = ["--seed", str(SEED), "--count", "3", "--out", str(out), "--phase-s", "6", "7"]

    def stop_at_second(index: int, label: str) -> None:
        if index == 1:
            raise Interrupted(label)

    with pytest.raises(Interrupted):
        generate_suite(out, seed=SEED, count=3, phase_s=(6.0, 7.0), progress=stop_at_second)
    INTERRUPTED["progress"] = json.loads((out / ".progress.json").read_text())
    # a run copied in just before the interruption, which the record does not list, is deleted on resume
    from harness.merge import keep_only_runs

    partial = out / ".suite.duckdb.partial"
    if partial.exists():
        shutil.copyfile(partial, out.parent / "copy.duckdb")
        INTERRUPTED["stray"] = keep_only_runs(out.parent / "copy.duckdb", [])
    INTERRUPTED["refused"] = main(["eval", "generate", *args])                  # not started over by mistake
    INTERRUPTED["other_seed"] = main(["eval", "generate", *args[2:], "--seed", "19", "--resume"])
    assert main(["eval", "generate", *args, "--resume", "--json"]) == 0
    return out


def test_an_interrupted_suite_resumes_where_it_stopped(suite, capsys):
    first = INTERRUPTED["progress"]
    assert first["next_index"] == 1 and len(first["truth"]) + len(first["dropped"]) == 1
    assert INTERRUPTED["refused"] == 2 and INTERRUPTED["other_seed"] == 2
    assert INTERRUPTED.get("stray", 0) == len(first["truth"])   # every run a record does not list goes
    truth = json.loads((suite / "truth.json").read_text())
    manifest = json.loads((suite / "manifest.json").read_text())
    for name, kept in first["truth"].items():   # scenario 0 kept from the first sitting, not recorded again
        assert truth[name]["run_id"] == kept["run_id"]
        assert manifest["scenarios"][name]["seconds"] == first["entries"][name]["seconds"]
    con = connect_readonly(suite / "suite.duckdb")
    try:
        runs = sorted(r[0] for r in con.execute("SELECT run_id FROM runs").fetchall())
    finally:
        con.close()
    assert runs == sorted(t["run_id"] for t in truth.values())
    assert not (suite / ".progress.json").exists() and not (suite / ".suite.duckdb.partial").exists()


def test_resume_refuses_a_folder_with_nothing_to_resume(tmp_path, capsys):
    assert main(["eval", "generate", "--seed", "1", "--count", "3", "--out", str(tmp_path / "new"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds no interrupted suite" in err and "drop --resume" in err and "Traceback" not in err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / ".progress.json").write_text("{not json")
    assert main(["eval", "generate", "--seed", "1", "--count", "3", "--out", str(tmp_path / "bad"), "--resume"]) == 2
    assert "is damaged" in capsys.readouterr().err


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


def test_a_reverted_cause_is_replayed_scored_and_cached(suite, tmp_path, capsys):
    capsys.readouterr()
    args = ["eval", "whatif", "--data", str(suite), "--cases", "1", "--methods", "gcm,no_change,no_change_replay",
            "--out", str(tmp_path / "out"), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    truth = json.loads((suite / "truth.json").read_text())
    manifest = json.loads((suite / "manifest.json").read_text())
    case = first["cases"][0]
    # the first case reverts the first incident's first true cause; a knob goes back to this run's own value
    name = sorted(n for n, t in truth.items() if t["root_cause_factors"])[0]
    assert case["scenario"] == name and case["kind"] == "revert"
    assert case["cause"] == sorted(truth[name]["root_cause_factors"])[0]
    if case["family"] == "knob":
        assert case["value"] == manifest["scenarios"][name]["config"]["engine"][case["cause"]]
    measured = case["measured"]
    assert not measured["cached"] and measured["requests"] > 0 and 0.0 <= measured["points"] <= 100.0
    gcm = case["predicted"]["gcm"]
    assert 0.0 <= gcm["low"] <= gcm["point"] <= gcm["high"] <= 100.0
    assert case["predicted"]["no_change"]["point"] == pytest.approx(case["observed"])
    # the paired control: the same window replayed unchanged in the same session, the no_change_replay predictor
    unchanged = case["unchanged"]
    assert not unchanged["cached"] and unchanged["requests"] > 0 and 0.0 <= unchanged["points"] <= 100.0
    assert case["predicted"]["no_change_replay"]["point"] == pytest.approx(unchanged["points"])
    assert first["replay_speed"]["replays"] == 2 and "unchanged" in first["scored"]
    assert first["scores"]["gcm"]["cases"] == 1 and "burn points" in first["units"]
    assert first["scores"]["gcm"]["median_abs_error"] == pytest.approx(abs(gcm["point"] - measured["points"]))
    assert (tmp_path / "out" / "replays.json").is_file()
    assert main(args) == 0   # the rerun neither refits nor replays: both come from the caches under --out
    again = json.loads(capsys.readouterr().out)
    assert again["cases"][0]["measured"] == {**measured, "cached": True}
    assert again["cases"][0]["unchanged"] == {**unchanged, "cached": True}
    assert again["cases"][0]["predicted"] == case["predicted"]
    assert (tmp_path / "out" / "predictions.json").is_file()
