"""`eval whatif --data` end to end on a small suite recorded by `eval generate`: a reverted cause replayed for
real (and replayed unchanged: the paired control), scored in burn points, and a rerun served from the replay
cache."""

import json

import pytest

from causalsre.cli.main import main

pytestmark = pytest.mark.slow   # three real recordings and one replay (about a minute on a quiet machine)

SEED = 18   # the same plan as tests/evaluation/test_generate.py: a control, a max_num_seqs push, a flood + KV shrink


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "suite"
    assert main(["eval", "generate", "--seed", str(SEED), "--count", "3", "--out", str(out), "--phase-s", "6", "7",
                 "--json"]) == 0
    return out


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
