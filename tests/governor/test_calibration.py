"""eval govern's per-tier latency objectives: a distribution-free upper confidence bound of each tier's quantile."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from causalsre.evaluation import govern_calibration as K
from causalsre.evaluation import govern_traffic as T
from causalsre.evaluation.govern_measure import tier_slos


def test_requests_needed_for_the_largest_value_to_bound_each_objective():
    assert K.requests_needed(0.995) == 598   # 1 - 0.995^598 >= 0.95 > 1 - 0.995^597
    assert 1 - 0.995 ** 598 >= 0.95 > 1 - 0.995 ** 597
    assert K.requests_needed(0.99) == 299 and K.requests_needed(0.95) == 59
    # a half-load run at 3 req/s needs 598 x 1.15 / 3 s for premium, never less than a run
    assert K.calibration_seconds([0.995, 0.99, 0.95], 3.0, 10.0) == math.ceil(1.15 * 598 / 3.0)
    assert K.calibration_seconds([0.95], 100.0, 10.0) == 10.0


def test_the_bound_covers_the_true_quantile_at_its_confidence_and_the_old_rule_did_not():
    rng = np.random.default_rng(3)
    true_q = -math.log(0.005)   # the 99.5 % quantile of an exponential(1)
    for n in (600, 2000):
        hits = 0
        for _ in range(400):
            hits += K.tier_threshold(list(rng.exponential(size=n)), 0.995, 1.0)["value"] >= true_q
        assert 0.92 <= hits / 400 <= 0.99, n   # nominal 0.95 (the order statistic is conservative by a bit)
    # the old rule: the interpolated p99.5 of 31 half-load requests, below the true quantile most of the time
    old = sum(np.quantile(rng.exponential(size=31), 0.995) >= true_q for _ in range(400)) / 400
    assert old < 0.3
    # with 2000 requests the bound is an inner order statistic, not the largest
    k, reached = K.upper_bound_index(2000, 0.995)
    assert k < 2000 and reached >= 0.95
    assert K.upper_bound_index(2000, 0.995)[0] > K.upper_bound_index(2000, 0.99)[0] > K.upper_bound_index(2000, 0.95)[0]


def test_too_few_requests_use_the_largest_and_say_how_weak_the_bound_is():
    k, reached = K.upper_bound_index(31, 0.995)
    assert k == 31 and reached == pytest.approx(1 - 0.995 ** 31)
    row = K.tier_threshold([0.1, 0.3, 0.2], 0.95, 2.0)
    assert row == {"value": 0.6, "bound": 0.3, "k": 3, "n": 3, "confidence": round(1 - 0.95 ** 3, 4)}


def test_each_tier_gets_its_own_thresholds_in_the_governor_and_in_the_slo_specs(tmp_path):
    rng = random.Random(0)
    ttfts = [rng.expovariate(4.0) for _ in range(2000)]
    tiers = {}
    for name, _, objective, _, _ in T.TIERS:
        row = K.tier_threshold(ttfts, objective, T.latency_factor(modelled=False))
        tiers[name] = {"objective": objective, "ttft_s": round(row["value"], 3), "tpot_s": 0.05 + objective / 100,
                       "confidence": row["confidence"]}
    thresholds = {"ttft_s": tiers["premium"]["ttft_s"], "tpot_s": tiers["premium"]["tpot_s"], "tiers": tiers}
    assert tiers["premium"]["ttft_s"] > tiers["standard"]["ttft_s"] > tiers["free"]["ttft_s"]
    section = T.governor_section(thresholds, 10.0)
    assert {t["name"]: t["ttft_s"] for t in section["tiers"]} == {n: t["ttft_s"] for n, t in tiers.items()}
    for name, spec, path in tier_slos(tmp_path, thresholds):
        assert f"{tiers[name]['ttft_s']}" in path.read_text(), name
    scaled = T.scaled_thresholds(dict(thresholds, calibration_speed_ms=10.0), 20.0)   # the wall clock's rule
    assert scaled["tiers"]["free"]["ttft_s"] == pytest.approx(2 * tiers["free"]["ttft_s"], abs=1e-3)
    assert T.tier_thresholds({"ttft_s": 1.0, "tpot_s": 0.1}, "free") == (1.0, 0.1)   # old single pair


def test_a_calibration_is_reused_only_from_the_same_step_cost_model(tmp_path, capsys):
    from causalsre.cli.main import main

    clock = {"mode": "modelled", "coefficients": {"base_s": 0.006, "prefill_token_s": 0.0003,
                                                  "decode_seq_s": 0.0003, "kv_token_s": 2e-6}}
    # written under the old 2x headroom: thresholds 2 x the bounds; premium's bound is the largest
    tiers = {n: {"ttft_s": 2 * b, "tpot_s": 0.2, "ttft_bound_s": b, "tpot_bound_s": 0.1, "objective": q,
                 "confidence": 0.95} for (n, _, q, _, _), b in zip(T.TIERS, (1.0, 0.8, 0.5))}
    good = {"setup": {"clock": clock, "workloads": {"gamma": {"capacity_rps": 12.5, "thresholds": {
        "ttft_s": 2.0, "tpot_s": 0.2, "tiers": tiers, "rule": "per tier 2 x ..."}}}}}
    path = tmp_path / "govern.json"
    path.write_text(__import__("json").dumps(good))
    capacity, thresholds = K.reused_calibration(path, "gamma", clock, 1.0)
    assert capacity == 12.5 and thresholds["reused_from"] == str(path) and thresholds["factor"] == 1.0
    # rebuilt from the recorded bounds with today's factor, not copied
    assert {n: (t["ttft_s"], t["tpot_s"]) for n, t in thresholds["tiers"].items()} == {
        "premium": (1.0, 0.1), "standard": (0.8, 0.1), "free": (0.5, 0.1)}
    assert (thresholds["ttft_s"], thresholds["tpot_s"]) == (1.0, 0.1)   # the strictest tier's
    assert K.reused_calibration(path, "gamma", clock, 2.0)[1]["tiers"]["free"]["ttft_s"] == 1.0
    other = dict(clock, coefficients=dict(clock["coefficients"], base_s=0.007))
    with pytest.raises(Exception, match="another step-cost model"):
        K.reused_calibration(path, "gamma", other, 1.0)
    with pytest.raises(Exception, match="no per-tier calibration of the azure"):
        K.reused_calibration(path, "azure", clock, 1.0)
    for tier in tiers.values():
        del tier["ttft_bound_s"]
    path.write_text(__import__("json").dumps(good))
    with pytest.raises(Exception, match="no upper bounds"):
        K.reused_calibration(path, "gamma", clock, 1.0)
    code = main(["eval", "govern", "--clock", "wall", "--calibration-from", str(path), "--out", str(tmp_path / "o")])
    assert code == 2 and "modelled-clock calibration" in capsys.readouterr().err


def test_headroom_is_one_on_the_modelled_clock_and_two_on_the_wall_clock(tmp_path):
    """The protocol: objectives the engine meets at half load are the bound itself on the modelled clock
    (deterministic); the wall clock keeps 2x for the machine's speed moving between runs."""
    assert T.latency_factor(modelled=True) == 1.0 and T.latency_factor(modelled=False) == 2.0
    from harness.config import parse_run_config
    from harness.runner import run

    lengths = T.workload_lengths("gamma", None)
    clock = {"mode": "modelled", "base_s": 0.0065, "prefill_token_s": 0.00036, "decode_seq_s": 0.00032,
             "kv_token_s": 2.4e-6}
    requests = T.schedule("gamma", load=0.5, seed=0, capacity=8.0, duration_s=3.0, lengths=lengths, trace_path=None)
    cfg = T.policy_config("gamma", "fcfs", requests=requests, load=0.5, capacity=8.0, seed=0, duration_s=3.0,
                          drain_s=3.0, thresholds=None, clock=clock)
    db = tmp_path / "half.duckdb"
    run(parse_run_config(cfg, source="test"), db, seed=0, run_id="half")
    modelled, wall = T.latency_thresholds(db, T.latency_factor(True)), T.latency_thresholds(db, T.latency_factor(False))
    assert modelled["factor"] == 1.0 and wall["factor"] == 2.0
    for name, tier in modelled["tiers"].items():
        assert tier["ttft_s"] == pytest.approx(tier["ttft_bound_s"], abs=1e-3)   # the bound, no headroom
        assert wall["tiers"][name]["ttft_s"] == pytest.approx(2 * tier["ttft_bound_s"], abs=1e-3)


def test_runs_at_the_protects_load_are_long_enough_for_one_bad_premium_request():
    premium = T.TIERS[0]
    assert premium[0] == "premium" and K.run_seconds(0.1, 0.995, 13.0, 5.0) == math.ceil(1.15 * 200 / 1.3)
    seconds = K.judged_seconds(1.3, 10.0, 5.0, strictest=premium, modelled=True, quick=False)
    expected_premium = premium[1] * 1.3 * 10.0 * seconds
    assert 200 <= expected_premium <= K.SLACK * 200 + 1.3   # enough (with the slack), and not much more
    assert 1 / (expected_premium * (1 - premium[2])) <= 1.0   # one bad request fits in premium's budget
    # other loads, the wall clock and --quick keep the run length asked for
    assert K.judged_seconds(0.8, 10.0, 5.0, strictest=premium, modelled=True, quick=False) == 5.0
    assert K.judged_seconds(1.3, 10.0, 5.0, strictest=premium, modelled=False, quick=False) == 5.0
    assert K.judged_seconds(1.3, 10.0, 5.0, strictest=premium, modelled=True, quick=True) == 5.0
    assert K.judged_seconds(1.3, 1000.0, 5.0, strictest=premium, modelled=True, quick=False) == 5.0   # already long
