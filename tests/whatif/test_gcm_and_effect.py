"""What-if and effect estimates against the known SCM: the truth is the same requests re-simulated under do()."""

import numpy as np
import pytest

from causalsre.bayes.factors import graph_view
from causalsre.bayes.synthetic import simulate
from causalsre.errors import UserError
from causalsre.whatif.context import parse_settings
from causalsre.whatif.effect import estimate_effect
from causalsre.whatif.gcm_predict import project_graph


def _window(frame):
    return frame[(frame["run_id"] == "run-1") & (frame["phase"] == "incident")]


def test_projection_keeps_knobs_connected_through_missing_mediators(serving):
    _, graph = serving
    projected = project_graph(graph_view(graph), ["max_num_seqs", "arrival_rate", "ttft_s", "is_bad"])
    assert projected.has_edge("max_num_seqs", "ttft_s") and projected.has_edge("arrival_rate", "ttft_s")
    assert set(projected.nodes) == {"max_num_seqs", "arrival_rate", "ttft_s", "is_bad"}


def test_gcm_interventional_rate_tracks_the_truth(serving, gcm_model):
    table, _ = serving
    model = gcm_model
    window = _window(table)
    for knob in (4.0, 16.0):
        truth = _window(simulate(8000, seed=4, do={"max_num_seqs": knob}))["is_bad"].mean()
        draws = model.bad_rate(window, {"max_num_seqs": knob}, repeats=3, seed=2)
        assert abs(np.median(draws) - truth) < 0.1, (knob, truth, np.median(draws))
    low = np.median(model.bad_rate(window, {"max_num_seqs": 4.0}, repeats=2))
    high = np.median(model.bad_rate(window, {"max_num_seqs": 16.0}, repeats=2))
    assert low > high + 0.1          # too few running slots: the queue and TTFT blow up
    with pytest.raises(UserError, match="never occurs"):
        model.bad_rate(window, {"policy": "lottery"})


def test_gcm_cluster_bootstrap_and_out_of_bag_widening(serving):
    from causalsre.whatif.gcm_predict import GcmWhatIf

    table, graph = serving
    model = GcmWhatIf.fit(table, graph_view(graph), bootstraps=4, max_rows=4000, seed=3)
    # each refit leaves out about a third of the 4 runs; each left-out run gives one residual per phase
    assert model.residuals.size >= 5 and np.isfinite(model.residuals).all()
    window = _window(table)
    narrow = model.bad_rate(window, {"max_num_seqs": 8.0}, repeats=2, seed=1, widen=False)
    wide = model.bad_rate(window, {"max_num_seqs": 8.0}, repeats=2, seed=1)
    assert narrow.size == 8 and wide.size == 8 * 8
    assert np.ptp(np.quantile(wide, [0.05, 0.95])) >= np.ptp(np.quantile(narrow, [0.05, 0.95]))
    np.testing.assert_array_equal(wide, model.bad_rate(window, {"max_num_seqs": 8.0}, repeats=2, seed=1))
    rows = GcmWhatIf.fit(table, graph_view(graph), bootstraps=2, max_rows=2000, seed=3, cluster=None)
    assert rows.residuals.size == 0      # row bootstrap: no run is ever out of the bag


def test_effect_dowhy_and_pgmpy_agree_with_the_truth(serving):
    table, graph = serving
    result = estimate_effect(table, graph_view(graph), "max_num_seqs", control=8, treated=4, seed=0)
    truth = simulate(8000, seed=4, do={"max_num_seqs": 4})["is_bad"].mean() - \
        simulate(8000, seed=4, do={"max_num_seqs": 8})["is_bad"].mean()
    assert result["dowhy"]["effect"] == pytest.approx(truth, abs=0.05)
    assert result["pgmpy"]["effect"] == pytest.approx(truth, abs=0.05)
    refutations = result["dowhy"]["refutations"]
    assert abs(refutations["placebo"]["new_effect"]) < 0.03       # a permuted knob has no effect
    assert refutations["random_common_cause"]["new_effect"] == pytest.approx(result["dowhy"]["effect"], abs=0.02)
    assert refutations["data_subset"]["new_effect"] == pytest.approx(result["dowhy"]["effect"], abs=0.04)


def test_effect_rejects_non_knobs_and_constant_knobs(serving):
    table, graph = serving
    view = graph_view(graph)
    with pytest.raises(UserError, match="not an actionable knob"):
        estimate_effect(table, view, "arrival_rate")
    with pytest.raises(UserError, match="never varies"):
        estimate_effect(table.assign(max_num_seqs=8.0), view, "max_num_seqs")


@pytest.mark.parametrize("items, message", [
    ((), "no intervention"),
    (("max_num_seqs",), "not KNOB=VALUE"),
    (("arrival_rate=3",), "not an actionable knob"),
    (("max_num_seqs=many",), "needs a number"),
])
def test_bad_settings_are_user_errors(serving, items, message):
    table, graph = serving
    with pytest.raises(UserError, match=message):
        parse_settings(items, graph_view(graph), table)


def test_settings_are_typed_like_the_column(serving):
    table, graph = serving
    assert parse_settings(("max_num_seqs=8", "policy=sjf"), graph_view(graph), table) == \
        {"max_num_seqs": 8.0, "policy": "sjf"}
