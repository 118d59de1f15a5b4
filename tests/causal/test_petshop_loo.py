"""Leave-one-out choice of attribute's settings, on synthetic hit tables whose best setting is known."""

from __future__ import annotations

from dataclasses import astuple

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalsre.causal import loo
from causalsre.causal.rootcause import rank_root_causes


def _threshold_hits(settings, signal, decoy):
    """A setting finds case i's root cause when its gate lies between the decoy's |z| and the root's."""
    gates = np.array([s.threshold for s in settings])[:, None]
    hit = (gates > decoy[None, :]) & (gates < signal[None, :])
    return hit, hit | (gates < signal[None, :])  # top 3: the root passed its gate


def test_loo_finds_the_known_best_threshold():
    rng = np.random.default_rng(3)
    settings = loo.grid()
    signal, decoy = rng.uniform(5.2, 5.9, 12), rng.uniform(4.1, 4.9, 12)  # only a gate of 5 hits all (not 4)
    hits1, hits3 = _threshold_hits(settings, signal, decoy)
    folds = loo.leave_one_out(settings, hits1, hits3)
    expected = loo.Settings(threshold=5.0)  # the other fields stay at the defaults (ties)
    assert all(settings[f.chosen] == expected for f in folds)
    assert all(f.hit1 for f in folds)
    assert settings[loo.choose(settings, hits1, hits3)] == expected
    assert not hits1[settings.index(loo.DEFAULTS)].any()  # the defaults (gate 4) would have missed them all


def test_held_out_case_is_not_seen():
    """When only one case favours a setting, leave-one-out cannot pick it for that case: LOO < training."""
    settings = loo.grid({"threshold": (3.0, 4.0)})
    hits1 = np.ones((2, 6), bool)
    hits1[settings.index(loo.DEFAULTS), 0] = False  # the default gate (3) misses case 0 only
    folds = loo.leave_one_out(settings, hits1, hits1.copy())
    other = next(s for s in settings if s != loo.DEFAULTS)
    assert settings[loo.choose(settings, hits1, hits1)] == other  # the full set picks the other gate
    assert settings[folds[0].chosen] == loo.DEFAULTS and not folds[0].hit1  # case 0's fold ties: the defaults
    assert [f.hit1 for f in folds[1:]] == [True] * 5
    assert np.mean([f.hit1 for f in folds]) == pytest.approx(5 / 6)


def test_ties_go_to_defaults_then_top3():
    settings = loo.grid()
    same = np.ones((len(settings), 4), bool)
    assert settings[loo.choose(settings, same, same)] == loo.DEFAULTS
    hits3 = same.copy()
    hits3[settings.index(loo.DEFAULTS)] = False
    best = settings[loo.choose(settings, same, hits3)]
    assert best != loo.DEFAULTS
    assert sum(a != b for a, b in zip(astuple(best), astuple(loo.DEFAULTS))) == 1


def test_bad_tables_refused():
    with pytest.raises(ValueError):
        loo.leave_one_out(loo.grid(), np.ones((3, 4), bool), np.ones((3, 4), bool))


def test_settings_change_what_attribute_reports():
    """The grid's knobs are real: a gate above the culprit's |z| hides it, the default finds it."""
    rng = np.random.default_rng(5)

    def sample(n, shift=0.0):
        db = 10 + rng.normal(0, 1, n) + shift
        api = 0.8 * db + rng.normal(0, 1, n)
        return pd.DataFrame({"db": db, "api": api, "frontend": 1.5 * api + rng.normal(0, 1, n)})

    graph = nx.DiGraph([("db", "api"), ("api", "frontend")])
    normal, abnormal = sample(500), sample(3, shift=6.0)
    assert rank_root_causes(normal, abnormal, graph, "frontend")[0].node == "db"
    assert all(c.node != "db" for c in rank_root_causes(normal, abnormal, graph, "frontend", threshold=20.0))
    off = rank_root_causes(normal, abnormal, graph, "frontend", footprint=False)
    assert off and off[0].score < 2  # without the footprint rule the score is 1 + share / (1 + share)


def test_gate_at_the_edge_of_a_plateau_loses_to_its_middle():
    """issue_5's failure in miniature: with the one case just above gate 4 held out, gates 4 and 5 tie on
    the others and specificity (higher for higher gates) picked 5, which misses it. Smoothed over the
    neighbouring gates, 4 (the middle of the plateau; 6 loses cases) wins and the case is found."""
    settings = loo.grid({"threshold": (3.0, 4.0, 5.0, 6.0)})
    signal = np.array([7.0] * 10 + [7.0, 4.5, 5.5, 5.5])  # 10 easy, then: noisy, just above 4, two below 6
    decoy = np.array([2.0] * 10 + [3.5, 2.0, 2.0, 2.0])
    hits1, hits3 = _threshold_hits(settings, signal, decoy)
    quiet = [0.90, 0.95, 0.97, 0.99]  # specificity rises with the gate
    folds = loo.leave_one_out(settings, hits1, hits3, secondary=quiet)
    assert settings[folds[11].chosen].threshold == 4.0 and folds[11].hit1
    assert settings[loo.choose(settings, hits1, hits3, secondary=quiet)].threshold == 4.0
    # The raw objective (no neighbours: each setting smoothed over itself only) has the failure.
    alone = [[(i, 1.0)] for i in range(len(settings))]
    others = np.ones(len(signal), bool)
    others[11] = False
    assert settings[loo.choose(settings, hits1, hits3, others, secondary=quiet, near=alone)].threshold == 5.0
