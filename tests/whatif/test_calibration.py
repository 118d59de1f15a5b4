import numpy as np
import pytest

from causalsre.bayes.synthetic import simulate
from causalsre.whatif.calibration import evaluate_cases, relative_error, score


def test_relative_error_floors_the_denominator_at_one_budget():
    assert relative_error(3.0, 2.0) == pytest.approx(0.5)
    assert relative_error(0.5, 0.0) == pytest.approx(0.5)


def test_score_counts_coverage_and_median_error():
    cases = [
        {"predicted": {"m": {"burn_rate": 2.0, "low": 1.0, "high": 3.0}}, "verified": {"burn_rate": 2.5}},
        {"predicted": {"m": {"burn_rate": 4.0, "low": 3.5, "high": 4.5}}, "verified": {"burn_rate": 8.0}},
        {"predicted": {"m": {"burn_rate": 1.0, "low": 0.0, "high": 2.0}}, "verified": {"burn_rate": 1.0}},
        {"predicted": {"m": {"burn_rate": 1.0, "low": 0.0, "high": 2.0}}, "verified": None},
    ]
    s = score(cases, ["m", "absent"])
    assert s == {"m": {"cases": 3, "median_relative_error": pytest.approx(0.2), "coverage_90": pytest.approx(2 / 3),
                       "median_interval_width": pytest.approx(2.0)}}


def test_score_reports_replay_drift_from_no_change_controls():
    cases = [{"window": "w1", "observed": 90.0, "replayed_no_change": 30.0, "verified": {"burn_rate": 20.0},
              "predicted": {"no_change": {"burn_rate": 90.0}}},
             {"window": "w2", "observed": 10.0, "replayed_no_change": 10.0, "verified": {"burn_rate": 5.0},
              "predicted": {"no_change": {"burn_rate": 10.0}}}]
    s = score(cases, ["no_change"])
    assert s["no_change"]["coverage_90"] is None and "median_interval_width" not in s["no_change"]
    assert s["replay_drift"] == {"cases": 2, "median_relative_error": pytest.approx(1.0), "coverage_90": None}


def test_default_cases_are_fixed_and_the_held_out_ones_marked():
    from causalsre.whatif.calibration import DEFAULT_CASES, HELD_OUT_FROM, HELD_OUT_V3_FROM, case_set

    assert len(DEFAULT_CASES) == 24 and (HELD_OUT_FROM, HELD_OUT_V3_FROM) == (12, 18)
    assert len({(w, tuple(sorted(i.items()))) for w, i in DEFAULT_CASES}) == 24
    assert [case_set(*DEFAULT_CASES[i]) for i in (0, 11, 12, 17, 18, 23)] == [
        "development", "development", "held_out_v2", "held_out_v2", "held_out_v3", "held_out_v3"]
    assert case_set("phase:x", {"k": 1.0}) is None


class _SyntheticContext:
    """What evaluate_cases needs from a Context, over the known SCM; 'verify' re-simulates under do()."""

    objective = 0.9

    def __init__(self, n, seed):
        self.n, self.seed = n, seed
        self.full = simulate(n, seed=seed)

    def table(self, text):
        run, phase = text.split("@")
        return self.full[(self.full["run_id"] == run) & (self.full["phase"] == phase)]

    def verify(self, _ctx, text, intervention):
        run, phase = text.split("@")
        replay = simulate(self.n, seed=self.seed, do=intervention)
        rate = replay[(replay["run_id"] == run) & (replay["phase"] == phase)]["is_bad"].mean()
        return {"burn_rate": rate / (1 - self.objective), "bad_rate": rate, "requests": 0}


def test_calibration_loop_on_the_known_scm_beats_no_change(gcm_model):
    ctx = _SyntheticContext(8000, 4)     # the same requests as the `serving` fixture the model was fitted on
    model = gcm_model
    cases = [("run-0@incident", {"max_num_seqs": 4.0}), ("run-1@incident", {"max_num_seqs": 16.0}),
             ("run-2@baseline", {"max_num_seqs": 4.0}), ("run-3@incident", {"max_num_seqs": 32.0})]
    results = evaluate_cases(ctx, cases, gcm_model=model, bayes_model=None, verify_fn=ctx.verify)
    assert all(r["replayed_no_change"] is not None for r in results)
    scores = score(results, ["gcm", "no_change"])
    assert scores["replay_drift"]["median_relative_error"] < 0.5    # the simulator replays its own data
    assert scores["gcm"]["cases"] == 4
    assert scores["gcm"]["median_relative_error"] < scores["no_change"]["median_relative_error"]
    assert scores["gcm"]["median_relative_error"] < 0.25
    assert all(np.isfinite(r["predicted"]["gcm"]["burn_rate"]) for r in results)


def test_score_latency_counts_coverage_and_relative_error():
    from causalsre.whatif.calibration import score_latency

    def case(value, low, high, measured):
        return {"latency": {"metric": "ttft_s", "predicted": {"p90": {"value": value, "low": low, "high": high}},
                            "verified": {"p90": measured}}}

    cases = [case(1.0, 0.5, 2.0, 1.0), case(1.0, 0.5, 2.0, 4.0), case(3.0, 1.0, 9.0, 2.0), {"latency": None}]
    scores = score_latency(cases)
    assert scores["metric"] == "ttft_s"
    assert scores["p90"]["cases"] == 3
    assert scores["p90"]["median_relative_error"] == pytest.approx(0.5)     # errors 0, 0.75, 0.5
    assert scores["p90"]["coverage_90"] == pytest.approx(2 / 3)
    assert scores["p90"]["median_interval_ratio"] == pytest.approx(4.0)    # ratios 4, 4, 9
    assert score_latency([{"latency": None}]) is None
