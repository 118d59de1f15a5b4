"""The postmortem's coalition bad rates, and the kept share a partial revert reads from them
(causalsre/whatif/sufficiency.py: the second opinion of ``bayes_paired_hull``)."""

from __future__ import annotations

import pytest

from causalsre.causal import load_graph
from causalsre.causal.postmortem import OTHER, postmortem
from causalsre.telemetry import connect_readonly
from causalsre.whatif.sufficiency import band, hull, kept_share, reverted_players
from causalsre.windows import parse_window


def _postmortem(path):
    con = connect_readonly(path)
    try:
        return postmortem(con, None, parse_window("phase:baseline", con), parse_window("phase:incident", con),
                          load_graph(), seed=0, n_pairs=600, n_boot=100, top_requests=1)
    finally:
        con.close()


def test_the_coalitions_span_the_attribution_and_reverting_the_only_cause_keeps_little(make_db):
    result = _postmortem(make_db(fault="max_num_seqs", phase_s=60.0))
    rates = {frozenset(r["changed"]): r["bad_rate"] for r in result["coalition_bad_rates"]}
    everything = max(rates, key=len)
    assert "max_num_seqs" in everything and len(rates) == 2 ** len(everything)
    # Efficiency: the coalition of every player moves the model's bad rate by what the players explain.
    other = next(a["contribution"] for a in result["attributions"] if a["factor"] == OTHER)
    assert rates[everything] - rates[frozenset()] == pytest.approx(result["total_change"] - other, abs=1e-9)
    rho = kept_share(result, "max_num_seqs")
    assert rho is not None and rho < 0.2
    assert kept_share(result, "num_kv_blocks") is None   # not a player: the model has nothing to say


def _result(rates: dict, shares: dict | None = None) -> dict:
    return {"coalition_bad_rates": [{"changed": sorted(c), "bad_rate": v} for c, v in rates.items()],
            "tenant_composition_share": shares or {}}


# Two causes, each enough on its own (a flood past capacity and a shorter timeout): reverting either keeps it all.
OVERDETERMINED = {frozenset(): 0.0, frozenset({"tenant"}): 0.9, frozenset({"request_timeout_s"}): 0.9,
                  frozenset({"tenant", "request_timeout_s"}): 0.95}
# Two causes that burn only together (a longer prompt on a shrunk cache).
JOINT = {frozenset(): 0.0, frozenset({"prompt_tokens"}): 0.02, frozenset({"num_kv_blocks"}): 0.01,
         frozenset({"prompt_tokens", "num_kv_blocks"}): 0.8}


def test_kept_share_tells_a_sufficient_cause_left_in_place_from_one_that_is_not():
    assert kept_share(_result(OVERDETERMINED), "request_timeout_s") == pytest.approx(0.9 / 0.95)
    assert kept_share(_result(JOINT), "num_kv_blocks") == pytest.approx(0.02 / 0.8)
    assert kept_share(_result({frozenset(): 0.3, frozenset({"x"}): 0.3}), "x") is None   # nothing explained


def test_a_tenant_revert_takes_the_factors_that_followed_its_mix():
    rates = {frozenset(): 0.0, frozenset({"arrival_rate"}): 0.9, frozenset({"max_num_seqs"}): 0.1,
             frozenset({"arrival_rate", "max_num_seqs"}): 0.95}
    result = _result(rates, {"arrival_rate": 0.97, "output_tokens": 0.2})
    assert reverted_players(result, "tenant") == {"arrival_rate"}
    assert kept_share(result, "tenant") == pytest.approx(0.1 / 0.95)
    # A uniform surge (composition share 0.1) is not the tenant's: the model cannot speak for a tenant revert.
    assert kept_share(_result(rates, {"arrival_rate": 0.1}), "tenant") is None


def test_the_hull_spans_both_opinions_only_for_a_partial_revert():
    paired = {"point": 1.0, "low": 0.0, "high": 4.0, "left_in_place": ["tenant"]}
    low, high = band(0.95, 0.0, 90.0, 200)
    assert 75 < low < 85.5 < high < 95
    out = hull(paired, 0.95, 0.0, 90.0, 200)
    assert (out["point"], out["low"], out["high"]) == (1.0, 0.0, high)
    # Where both say the burn goes, the interval stays the paired model's.
    assert hull(paired, 0.0, 0.0, 90.0, 200)["high"] == 4.0
    full = {**paired, "left_in_place": []}
    assert hull(full, 0.95, 0.0, 90.0, 200)["high"] == 4.0
    assert hull(paired, None, 0.0, 90.0, 200)["high"] == 4.0
