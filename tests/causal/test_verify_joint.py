"""--verify on two causes of which each alone keeps the incident burning (an OR): the single replays remove
little, so the causes are replayed reverted together, and that joint share is reported. The replays are faked
here (a burn that ends only when both causes are reverted; the real replay path is test_verify_replay.py)."""

from __future__ import annotations

import pandas as pd

from causalsre.causal import verify


def _verify(monkeypatch, bad_rate, ratio=1.0, modelled=False):
    """verify_postmortem with replays whose bad rate is ``bad_rate(set of reverted factors)``."""
    monkeypatch.setattr(verify, "_modelled_clock", lambda db, runs, phase: modelled)
    monkeypatch.setattr(verify, "_reverter", lambda factor, *a: lambda cfg, run: cfg | {factor})
    monkeypatch.setattr(verify, "_replay", lambda out, db, runs, phase, slo, change: {
        "bad_rate": bad_rate(change(frozenset(), runs[0])), "requests": 60, "step_ms": [1.0]})
    import causalsre.whatif.verify as wv

    monkeypatch.setattr(wv, "decode_step_ms", lambda con, run: 1.0)
    monkeypatch.setattr(wv, "speed_ratio", lambda recorded, replayed: ratio)
    result = {"total_change": 0.9, "changes": [],
              "attributions": [{"factor": f, "role": "cause", "contribution": 0.45} for f in
                               ("cpu_contention", "max_num_seqs")]}
    base = pd.DataFrame({"run_id": ["r"] * 4, "phase": ["baseline"] * 4, "is_bad": [False] * 4})
    inc = pd.DataFrame({"run_id": ["r"] * 4, "phase": ["incident"] * 4, "is_bad": [True] * 4})
    return verify.verify_postmortem(result, db_path="unused", slo=None, baseline_table=base, incident_table=inc,
                                    con=None), result


def test_either_cause_alone_burns_so_both_are_reverted_together(monkeypatch):
    # Burning unless both are reverted; one reverted leaves 0.85 of 0.95.
    both = {"cpu_contention", "max_num_seqs"}
    checked, result = _verify(monkeypatch, lambda reverted: 0.0 if both <= reverted else 0.85 if reverted else 0.95)
    singles = [c["verified_share"] for c in checked["causes"]]
    assert all(0.0 < s < 0.2 for s in singles)
    joint = checked["joint"]
    assert set(joint["factors"]) == both and joint["verified_share"] == 1.0 and joint["interaction"]
    assert "together" in joint["why"]


def test_causes_that_add_up_need_no_joint_replay(monkeypatch):
    # Each removes its half: the single shares already account for the burn.
    share = {"cpu_contention": 0.5, "max_num_seqs": 0.45}
    checked, _ = _verify(monkeypatch, lambda reverted: 0.95 * (1 - sum(share[f] for f in reverted)))
    assert checked["joint"] is None
    assert [round(c["verified_share"], 2) for c in checked["causes"]] == [0.5, 0.45]


def test_a_replay_on_a_much_slower_machine_reports_but_does_not_rerank(monkeypatch):
    # max_num_seqs second by estimate, first by the replays: at 0.2x the recording's speed the replays are
    # another incident (fresh q12 twice at 0.16-0.22x: contention 9 %, then 98 %), so the estimate's order stays.
    share = {"cpu_contention": 0.1, "max_num_seqs": 0.8}
    rate = lambda reverted: 0.95 * (1 - sum(share[f] for f in reverted))  # noqa: E731
    slow, result = _verify(monkeypatch, rate, ratio=0.2)
    assert not slow["ranked_by_replay"] and "slower" in slow["warning"]
    assert [a["factor"] for a in result["attributions"]] == ["cpu_contention", "max_num_seqs"]
    same, result = _verify(monkeypatch, rate, ratio=1.1)
    assert same["ranked_by_replay"] and "warning" not in same
    assert [a["factor"] for a in result["attributions"]] == ["max_num_seqs", "cpu_contention"]


def test_on_the_modelled_clock_the_machines_speed_does_not_stop_the_rerank(monkeypatch):
    # The modelled clock's latencies are the cost model's on any machine; the probe's real passes are not.
    share = {"cpu_contention": 0.1, "max_num_seqs": 0.8}
    rate = lambda reverted: 0.95 * (1 - sum(share[f] for f in reverted))  # noqa: E731
    checked, result = _verify(monkeypatch, rate, ratio=0.2, modelled=True)
    assert checked["ranked_by_replay"] and "warning" not in checked and "modelled clock" in checked["speed_note"]
    assert [a["factor"] for a in result["attributions"]] == ["max_num_seqs", "cpu_contention"]
