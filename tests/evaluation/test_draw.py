"""The generator's draws (no recording): suite proportions, coverage of every kind, ranges, reproducibility."""

from __future__ import annotations

import math

import pytest

from causalsre.cli.main import main
from causalsre.errors import UserError
from causalsre.evaluation import ranges as R
from causalsre.evaluation.draw import CONTROL, MIX, SINGLE, draw_scenario, plan_suite, run_config_dict
from causalsre.evaluation.generate import _attempts, _base_config, burn_check
from harness.config import PUSHABLE_KNOBS, parse_run_config
from harness.faults import FAULT_FACTORS
from harness.scenarios import scenario_truth


@pytest.mark.parametrize("count", [3, 12, 40])
def test_plan_has_a_third_mixes_and_a_tenth_controls(count):
    plan = plan_suite(5, count)
    shapes = [shape for shape, _ in plan]
    assert len(plan) == count
    assert shapes.count(MIX) >= count / 3 and shapes.count(CONTROL) >= count / 10
    assert shapes.count(MIX) == math.ceil(count / 3) and shapes.count(CONTROL) == math.ceil(count / 10)
    for shape, kinds in plan:
        assert len(kinds) == {CONTROL: 0, SINGLE: 1, MIX: 2}[shape]
        assert len({R.factor_of(k) for k in kinds}) == len(kinds)  # a mix changes two different factors


def test_every_fault_kind_and_pushable_knob_is_drawn():
    kinds = {k for _, ks in plan_suite(2, 40) for k in ks}
    expected = set(FAULT_FACTORS) | {f"config_push:{knob}" for knob in PUSHABLE_KNOBS}
    assert kinds == expected


def test_draws_are_a_function_of_the_seed_and_stay_in_range():
    base = _base_config()
    for index, (shape, kinds) in enumerate(plan_suite(9, 24)):
        one, two = draw_scenario(9, index, shape, kinds), draw_scenario(9, index, shape, kinds)
        assert one.to_json() == two.to_json()
        b = one.base
        assert R.PHASE_S[0] <= b["baseline_s"] <= R.PHASE_S[1] and R.PHASE_S[0] <= b["incident_s"] <= R.PHASE_S[1]
        assert R.LOAD_FRACTION[0] <= b["load_fraction"] <= R.LOAD_FRACTION[1]
        assert R.TENANTS[0] <= len(b["tenants"]) <= R.TENANTS[1]
        cfg = parse_run_config(run_config_dict(one, base, 9))
        truth = scenario_truth(cfg)
        assert sorted(truth["root_cause_factors"]) == sorted(R.factor_of(k) for k in kinds)
        for fault in cfg.faults:
            assert b["baseline_s"] <= fault.at_s <= b["baseline_s"] + R.ONSET_DELAY_S[1]
            if fault.kind == "rate_surge":
                assert 1.5 <= fault.factor <= 4.0
            if fault.kind == "config_push" and "max_num_seqs" in fault.knobs:
                assert 1 <= fault.knobs["max_num_seqs"] <= 4
            if fault.kind == "kv_shrink":
                assert 25 <= fault.num_kv_blocks <= 103


def test_redraws_raise_the_magnitude_then_draw_afresh():
    attempts = list(_attempts(4, 0, SINGLE, ["step_delay"], R.PHASE_S))
    assert [why for _, why in attempts] == ["first draw", "magnitude up", "fresh draw", "magnitude up"][
        :len(attempts)]
    assert len(attempts) == R.MAX_REDRAWS + 1
    first, raised = attempts[0][0].faults[0], attempts[1][0].faults[0]
    assert raised.severity == pytest.approx((1 + first.severity) / 2)
    controls = [why for _, why in _attempts(4, 1, CONTROL, [], R.PHASE_S)]
    assert controls == ["first draw"] + ["fresh draw"] * R.MAX_REDRAWS


def test_burn_check_margin_is_the_error_budget():
    phases = {"baseline": {"good_fraction": 0.98, "requests": 50}, "incident": {"good_fraction": 0.85, "requests": 60}}
    assert burn_check(phases, 0.9, control=False)["ok"]          # 0.15 - 0.02 = 0.13 >= 0.1
    assert not burn_check(phases, 0.9, control=True)["ok"]       # a control must not burn
    assert not burn_check(phases, 0.8, control=False)["ok"]      # 0.13 < 0.2
    calm = {"baseline": {"good_fraction": 1.0, "requests": 9}, "incident": {"good_fraction": 0.95, "requests": 9}}
    assert burn_check(calm, 0.9, control=True)["ok"] and not burn_check(calm, 0.9, control=False)["ok"]
    empty = {"baseline": {"good_fraction": 1.0, "requests": 2}, "incident": {"good_fraction": 0.0, "requests": 30}}
    assert not burn_check(empty, 0.9, control=False)["ok"]     # two baseline requests say nothing


def test_too_small_a_count_is_a_user_error(tmp_path, capsys):
    with pytest.raises(UserError, match="too small"):
        plan_suite(0, 2)
    assert main(["eval", "generate", "--seed", "1", "--count", "2", "--out", str(tmp_path / "x")]) == 2
    assert "error:" in capsys.readouterr().err


def test_a_knob_without_its_own_range_still_gets_a_push():
    import numpy as np

    rng = np.random.default_rng(0)
    assert R.push_value("enable_chunked_prefill", True, 0.5, rng) is False
    # every other policy that runs without tiers; edf and budget need [[governor.tiers]], which a scenario lacks
    assert {R.push_value("policy", "fcfs", 0.5, rng) for _ in range(60)} == {"priority", "sjf", "vtc"}
    assert R.push_value("block_size", 16, 1.0, rng) == 2        # generic: 10 % of the base at full severity
    assert R.push_value("max_num_seqs", 16, 1.0, rng) == 1 and R.push_value("max_num_seqs", 16, 0.0, rng) == 4
