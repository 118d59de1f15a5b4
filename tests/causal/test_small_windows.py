"""Small windows: a cause is named only when the windows' own requests support it (issue #19: a burn of two
requests in ten is "I cannot tell", not a confident cause), and the request-level variance is right."""

from __future__ import annotations

import numpy as np
import pytest

from causalsre.causal.shapley import bootstrap_means, request_variance, widen
from causalsre.causal.synthetic import SyntheticSpec, generate
from causalsre.evaluation.score import names_a_cause
from tests.causal.phase_postmortem import postmortem_of_phases


def _pair_interval(y_base, y_inc, rng, request_level: bool):
    pb, pi = rng.integers(0, len(y_base), 2000), rng.integers(0, len(y_inc), 2000)
    phi = (y_inc[pi] - y_base[pb])[None, :]
    low, high = bootstrap_means(phi, 200, rng)
    if request_level:
        low, high = widen(phi.mean(axis=1), low, high, request_variance(phi, pb, pi, len(y_base), len(y_inc)))
    return float(low[0]), float(high[0])


@pytest.mark.parametrize("request_level, covers", [(True, True), (False, False)])
def test_intervals_of_a_few_requests_cover_the_true_change(request_level, covers):
    # 8 baseline and 10 incident requests, bad with probability 0.1 and 0.4: the change is 0.3. Pairs alone
    # (2,000 of them) give an interval as narrow as thousands of requests would, and miss it most of the time.
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(150):
        y_base, y_inc = (rng.random(8) < 0.1).astype(float), (rng.random(10) < 0.4).astype(float)
        low, high = _pair_interval(y_base, y_inc, rng, request_level)
        hits += low <= 0.3 <= high
    coverage = hits / 150
    assert (coverage >= 0.85) is covers, coverage


def test_large_windows_keep_the_pair_bootstrap_interval():
    rng = np.random.default_rng(1)
    y_base, y_inc = (rng.random(8000) < 0.1).astype(float), (rng.random(10000) < 0.4).astype(float)
    narrow = _pair_interval(y_base, y_inc, np.random.default_rng(2), False)
    wide = _pair_interval(y_base, y_inc, np.random.default_rng(2), True)
    assert wide[1] - wide[0] < 1.2 * (narrow[1] - narrow[0])


def _few_requests_db(path, bad_in_incident: int):
    """A max_num_seqs push over two 4-second windows of ~10 requests; every baseline request is good and exactly
    ``bad_in_incident`` incident requests failed (status timeout, a bad event without an SLO; negative: all but
    that many)."""
    tables = generate(SyntheticSpec(fault="max_num_seqs", phase_s=4.0, arrival_rate=3.0, seed=3, timeout_s=100.0))
    requests = tables["requests"]
    boundary = int(4.0 * 1e9)
    incident = np.flatnonzero(requests["scheduled_arrival_ns"].to_numpy() >= boundary)
    bad_in_incident %= len(incident)
    assert 2 <= bad_in_incident <= len(incident) - 2  # a sanity check of the fixture, not of the method
    status = np.array(["ok"] * len(requests), dtype=object)
    status[incident[:bad_in_incident]] = "timeout"
    requests["status"] = status
    return postmortem_of_phases(path, tables, n_pairs=2000, n_boot=200)


def test_two_bad_requests_of_ten_name_no_cause(tmp_path):
    result = _few_requests_db(tmp_path / "few.duckdb", bad_in_incident=2)
    assert result["n_baseline"] < 20 and result["n_incident"] < 20
    assert names_a_cause(result) is None  # the pushed knob may rank first, but nothing supports naming it


def test_all_but_two_bad_still_names_the_push(tmp_path):
    result = _few_requests_db(tmp_path / "many.duckdb", bad_in_incident=-2)
    assert names_a_cause(result) == "max_num_seqs"


def test_the_report_says_it_cannot_tell_instead_of_naming_the_top_factor(tmp_path):
    from causalsre.cli.postmortem import _report
    from causalsre.report.builders import postmortem_summary

    result = _few_requests_db(tmp_path / "few.duckdb", bad_in_incident=2)
    assert result["cannot_tell"]
    result.setdefault("slo", "statuses only")   # the CLI always passes an SLO; this fixture has none
    text = _report(result)
    assert "cannot tell: the bad-event rate moved from" in text
    summary = postmortem_summary(result)
    assert "No cause can be named" in summary and "The largest cause is" not in summary
    many = _few_requests_db(tmp_path / "many.duckdb", bad_in_incident=-2)
    many.setdefault("slo", "statuses only")
    assert "cannot tell" not in _report(many) and "The largest cause is" in postmortem_summary(many)
