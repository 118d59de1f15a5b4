"""A change that HELPS (the baseline burned, the incident less): no cause of a burn is named; the postmortem
says the burn fell and its contributions say what lowered it (fresh q08 of round 4: max_num_seqs 2 -> 32)."""

from __future__ import annotations

from causalsre.causal.synthetic import SyntheticSpec, generate
from causalsre.causal.verdict import burn_fell, burn_test
from tests.causal.phase_postmortem import postmortem_of_phases


def _burn(b_bad, b_n, i_bad, i_n):
    burn = {"baseline": {"requests": b_n, "bad_events": b_bad, "bad_rate": b_bad / b_n},
            "incident": {"requests": i_n, "bad_events": i_bad, "bad_rate": i_bad / i_n}}
    return burn_fell(burn, burn_test(burn))


def test_only_a_significant_fall_is_a_fall():
    assert "fell from 35 of 74 requests to 0 of 75" in _burn(35, 74, 0, 75)
    assert _burn(2, 20, 1, 20) is None      # within chance
    assert _burn(0, 74, 35, 75) is None     # a burn, not a fall


def test_a_push_that_helps_names_no_cause_of_a_burn(tmp_path):
    tables = generate(SyntheticSpec(fault="max_num_seqs", phase_s=40.0, seed=1))
    # The later window (max_num_seqs cut to 6, burning) becomes the baseline, the earlier one (32) the incident:
    # the "incident" is the improvement that raising max_num_seqs brings.
    tables["phases"]["name"] = ["incident", "baseline"]
    result = postmortem_of_phases(tmp_path / "fell.duckdb", tables)
    assert result["total_change"] < 0 and "fell from" in result["burn_fell"]
    causes = [a for a in result["attributions"] if a["role"] == "cause"]
    assert causes and min(causes, key=lambda a: a["contribution"])["factor"] == "max_num_seqs"
