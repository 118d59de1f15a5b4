"""Peer adapters on a tiny linear SCM whose root cause is known; a peer that cannot run here is skipped
with the reason `missing` gives."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalsre.evaluation import peers

GRAPH = nx.DiGraph([("db", "api"), ("api", "frontend"), ("auth", "frontend")])


def _sample(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    db = 10 + rng.normal(0, 1, n) + shift
    auth = 3 + rng.normal(0, 1, n)
    api = 0.5 * db + rng.normal(0, 1, n)
    return pd.DataFrame({"db": db, "auth": auth, "api": api, "frontend": api + auth + rng.normal(0, 1, n)})


@pytest.mark.parametrize("name", peers.PEERS)
@pytest.mark.slow  # the gcm peers take 10-15 s each even on 4 nodes (Shapley over mechanism samples)
def test_peer_ranks_the_shifted_root_first(name):
    why = peers.missing([name])
    if why:
        pytest.skip(f"{name}: {why[name]}")
    normal, abnormal = _sample(300, 1), _sample(3, 2, shift=8.0)
    ranked = peers.rank(name, normal, abnormal, GRAPH, "frontend")
    assert ranked[0] == "db", ranked


def test_availability_is_negated_for_up_is_worse_methods():
    name = "rcaeval_baro"
    if peers.missing([name]):
        pytest.skip(peers.missing([name])[name])
    normal, abnormal = _sample(300, 1), _sample(3, 2, shift=-8.0)  # a drop, as availability drops
    assert peers.rank(name, normal, abnormal, GRAPH, "frontend", up_is_worse=False)[0] == "db"
    assert peers.rank(name, normal, abnormal, GRAPH, "frontend", up_is_worse=True)[0] != "db"


def test_unknown_peer_is_reported_missing():
    assert "unknown peer" in peers.missing(["nope"])["nope"]
