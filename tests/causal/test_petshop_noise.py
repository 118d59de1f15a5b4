"""A heavy-tailed external call must not outrank a culprit that deviates far beyond its own normal noise
(issue #19: at high traffic `amazon.com_remote`'s usual spikes ranked above the true culprit). The rule
(``beyond_normal``) is on the leave-one-out grid; it is off by default because leave-one-out does not pick it."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.causal.rootcause import RootCauseModel, rank_root_causes

GRAPH = nx.DiGraph([("remote", "api"), ("db", "api"), ("api", "frontend")])


def _sample(n: int, seed: int, remote_spike: float = 0.0, db_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # An external call: 1 s, plus now and then a slow call of tens of seconds (normal for it).
    remote = 1 + rng.normal(0, 0.1, n) + (rng.random(n) < 0.04) * rng.exponential(25, n) + remote_spike
    db = 5 + rng.normal(0, 1, n) + db_shift
    api = remote + db + rng.normal(0, 0.5, n)
    return pd.DataFrame({"remote": remote, "db": db, "api": api, "frontend": api + rng.normal(0, 0.5, n)})


def _incident():
    normal = _sample(600, seed=1)
    abnormal = _sample(3, seed=2, remote_spike=40.0, db_shift=9.0)  # a usual-sized spike beside a real fault
    model = RootCauseModel.fit(normal, GRAPH, "frontend")
    assert model.normal_extreme["remote"] > abs(model.window(abnormal).marginal["remote"])  # within its range
    return normal, abnormal


def test_external_spike_within_its_normal_range_is_not_the_culprit():
    normal, abnormal = _incident()
    ranked = [c.node for c in rank_root_causes(normal, abnormal, GRAPH, "frontend", beyond_normal=True)]
    assert ranked[0] == "db", ranked
    assert "remote" not in ranked


def test_without_the_rule_the_spike_wins():
    """The rule is what makes the difference: with it off, the spike's larger share ranks it first."""
    normal, abnormal = _incident()
    ranked = [c.node for c in rank_root_causes(normal, abnormal, GRAPH, "frontend", beyond_normal=False)]
    assert ranked[0] == "remote", ranked


def test_external_fault_beyond_its_normal_range_is_still_named():
    normal = _sample(600, seed=1)
    abnormal = _sample(3, seed=2, remote_spike=400.0)  # far past any slow call in the normal data
    assert rank_root_causes(normal, abnormal, GRAPH, "frontend", beyond_normal=True)[0].node == "remote"
