"""Scores of `eval whatif --data` in burn points (percentage points of the bad-event share), by hand, and the
conformal margins and replay cache they rest on."""

import math

import numpy as np
import pytest

from causalsre.whatif.conformal import (add_conformal, best_method, conformal_quantile, failures, margins_from,
                                        score_points)


def _case(scenario, point, low, high, measured, observed=True, suite="s"):
    return {"suite": suite, "scenario": scenario, "key": f"{suite}/{scenario}", "observed": 90.0,
            "value_observed": observed, "measured": {"points": measured},
            "predicted": {"m": {"point": point, "low": low, "high": high}, "no_change": {"point": 90.0}}}


CASES = [
    _case("a", 10.0, 0.0, 20.0, 15.0),     # covered, width 20, error 5
    _case("b", 50.0, 40.0, 60.0, 80.0),    # missed, width 20, error 30
    _case("c", 50.0, 0.0, 100.0, 0.0),     # covered by [0, 100]: a width miss whatever the median
    _case("d", 5.0, 2.0, 12.0, 6.0, observed=False),   # covered, width 10, error 1
]


def test_scores_are_in_burn_points_by_hand():
    s = score_points(CASES, ["m", "no_change", "absent"])
    m = s["m"]
    assert m["cases"] == 4 and m["coverage_90"] == pytest.approx(0.75)
    assert m["median_width"] == pytest.approx(20.0)          # widths 20, 20, 100, 10
    assert m["median_abs_error"] == pytest.approx(17.5)      # errors 5, 30, 50, 1
    assert m["full_range"] == 1 and m["width_ok"] == pytest.approx(0.75) and m["unobserved"] == 1
    assert m["meets"] == {"cases": False, "coverage_90": False, "median_width": True, "median_abs_error": False}
    nc = s["no_change"]
    assert nc["coverage_90"] is None and nc["median_abs_error"] == pytest.approx(79.5)   # 75, 10, 90, 84
    assert "absent" not in s


def test_conformal_quantile_has_the_finite_sample_rank():
    assert conformal_quantile(list(range(1, 20))) == 18     # n = 19: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile([1.0, 2.0, 3.0]) == math.inf   # too few cases for a 90 % margin: [0, 100]


def test_leave_one_incident_out_never_uses_the_case_s_own_incident():
    cases = [_case(f"i{k}", 50.0, 40.0, 60.0, 60.0 + k) for k in range(10)]   # scores 0, 1, ..., 9
    cases.append(_case("i0", 50.0, 40.0, 60.0, 95.0))   # a second case of incident i0, score 35
    add_conformal(cases, ["m"])
    # i0's cases see the nine scores 1..9: ceil(10 * 0.9) = 9th -> 9
    assert cases[0]["predicted"]["m_cqr"]["margin"] == 9 and cases[-1]["predicted"]["m_cqr"]["high"] == 69
    # i1 sees 0, 2..9 and 35 (ten scores): ceil(11 * 0.9) = 10th -> 35
    assert cases[1]["predicted"]["m_cqr"]["margin"] == 35 and cases[1]["predicted"]["m_cqr"]["high"] == 95


def test_margins_from_another_report_and_negative_margins_narrow():
    calibration = [_case(f"c{k}", 50.0, 20.0, 80.0, 50.0) for k in range(19)]   # every score -30
    margins = margins_from(calibration, ["m"])
    assert margins == {"m": {"margin": -30.0, "calibration_cases": 19}}
    fresh = [_case("f", 40.0, 10.0, 90.0, 45.0)]
    assert add_conformal(fresh, ["m"], margins) == ["m_cqr"]
    assert fresh[0]["predicted"]["m_cqr"] == {"point": 40.0, "low": 40.0, "high": 60.0, "margin": -30.0}


def test_best_method_and_its_failures_one_line_each():
    scores = score_points(CASES, ["m"])
    assert best_method(scores) == "m"
    lines = failures(CASES, "m")
    assert len(lines) == 2
    assert lines[0].startswith("s/b: predicted 50.0 [40.0, 60.0], measured 80.0") and "outside the interval" in lines[0]
    assert "interval is [0, 100]" in lines[1] and "error 50" in lines[1]


def test_replay_cache_survives_a_restart_and_skips_the_replay(tmp_path, monkeypatch):
    from causalsre.whatif import calibration_suite as cs

    calls = []

    def fake_replay(ctx, window, change, seed_offset=0):
        calls.append((window, seed_offset))
        return {"bad_rate": 0.25, "requests": 40, "speed_ratio": 1.0}

    monkeypatch.setattr("causalsre.whatif.verify.replay", fake_replay)

    window = "phase:incident@r"
    path = tmp_path / "out" / cs.CACHE_NAME
    first = cs._measure(None, None, None, window, cs.ReplayCache(path), "k|v1", 0)
    again = cs._measure(None, None, None, window, cs.ReplayCache(path), "k|v1", 0)
    other = cs._measure(None, None, None, window, cs.ReplayCache(path), "k|v2", 0)   # new code version
    assert first == {"points": 25.0, "requests": 40, "speed_ratio": 1.0, "cached": False}
    assert again == {**first, "cached": True} and not other["cached"]
    assert calls == [("phase:incident@r", 0), ("phase:incident@r", 0)]
    path.write_text("{not json")
    assert cs.ReplayCache(path).entries == {}   # a damaged cache costs replays, not a crash


def test_paired_scores_are_the_scores_of_the_change():
    """Generated cases with a known unchanged replay u: a paired prediction's error against the measured share is
    the error of its predicted change (pred - u) against the measured change (y - u), and no_change_replay (u
    itself) scores |y - u|."""
    from causalsre.whatif.conformal import score_points

    rng = np.random.default_rng(5)
    cases = []
    for i in range(31):
        u, y, pred = (float(v) for v in rng.uniform(0, 100, 3))
        cases.append({"key": f"k{i}", "suite": "s", "scenario": f"g{i}", "observed": 50.0, "unchanged": {"points": u},
                      "measured": {"points": y},
                      "predicted": {"bayes_paired": {"point": pred, "low": pred - 5, "high": pred + 5},
                                    "no_change_replay": {"point": u}}})
    scores = score_points(cases, ["bayes_paired", "no_change_replay"])
    change = [abs((c["predicted"]["bayes_paired"]["point"] - c["unchanged"]["points"])
                  - (c["measured"]["points"] - c["unchanged"]["points"])) for c in cases]
    assert scores["bayes_paired"]["median_abs_error"] == pytest.approx(float(np.median(change)))
    assert scores["no_change_replay"]["median_abs_error"] == pytest.approx(
        float(np.median([abs(c["measured"]["points"] - c["unchanged"]["points"]) for c in cases])))
    assert scores["no_change_replay"]["coverage_90"] is None and scores["bayes_paired"]["median_width"] == pytest.approx(10)


def test_a_replay_that_runs_too_long_is_stopped_cached_and_left_unscored(tmp_path, monkeypatch):
    """A replay that never returns (the modelled-clock spin) is interrupted at the timeout, cached as timed out
    (a rerun does not wait again) and scores nothing; a fast one under the same timeout is measured."""
    import time

    from causalsre.whatif import calibration_suite as cs

    calls = []

    def spinning(ctx, window, change, seed_offset=0):
        calls.append(window)
        while True:
            time.sleep(0.01)

    monkeypatch.setattr("causalsre.whatif.verify.replay", spinning)
    monkeypatch.setattr(cs, "REPLAY_TIMEOUT_S", 0.3)
    path = tmp_path / cs.CACHE_NAME
    stopped = cs._measure(None, None, None, "phase:incident@r", cs.ReplayCache(path), "k", 0)
    assert stopped["points"] is None and stopped["timed_out"] == 0.3 and not stopped["cached"]
    assert cs._measure(None, None, None, "phase:incident@r", cs.ReplayCache(path), "k", 0)["cached"]
    assert calls == ["phase:incident@r"]
    assert score_points([{**CASES[0], "measured": stopped}], ["m"]) == {}
    monkeypatch.setattr("causalsre.whatif.verify.replay",
                        lambda ctx, window, change, seed_offset=0: {"bad_rate": 0.5, "requests": 10, "speed_ratio": None})
    assert cs._measure(None, None, None, "phase:incident@r", cs.ReplayCache(path), "k2", 0)["points"] == 50.0
