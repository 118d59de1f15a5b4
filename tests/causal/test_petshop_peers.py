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


class _Case:
    """The parts of ``petshop_eval.Case`` that ``run_peers`` reads."""

    def __init__(self, name, shift=8.0):
        self.shift = shift
        self.scenario, self.graph, self.normal = "low_traffic", GRAPH, _sample(300, 1)
        self.incident = type("Incident", (), {"name": name, "target": "frontend", "root_cause": "db",
                                              "metric": "latency"})()

    def abnormal(self, after_s):
        return _sample(3, 2, shift=self.shift)


def test_a_peer_past_its_cap_is_a_listed_timeout_and_a_miss(monkeypatch):
    """Every incident is scored: one that a peer does not finish within the cap counts as a miss and is
    listed (before the cap, a slow peer was run on the first few incidents only)."""
    import time

    def fake_rank(name, normal, abnormal, graph, target, up_is_worse=True, seed=0):
        if abnormal["db"].iloc[0] > 50:  # the slow case (it runs in a forked child: no shared counter)
            time.sleep(30)
        return ["db", "api"]

    monkeypatch.setattr(peers, "rank", fake_rank)
    monkeypatch.setattr(peers, "missing", lambda names=peers.PEERS: {})
    started = time.monotonic()
    out = peers.run_peers(["rcaeval_baro"], [_Case("issue_0"), _Case("issue_1", 100.0), _Case("issue_2")], 600, cap_s=1.0)
    cell = out["results"]["rcaeval_baro"]["low_traffic/latency"]
    assert time.monotonic() - started < 25  # the slow call was killed at its cap, not waited for
    assert cell["n"] == 3 and cell["top1"] == 2 / 3
    assert cell["timeouts"] == ["issue_1: timeout after 1 s"] and cell["failures"] == []


def test_a_failing_peer_is_a_listed_failure(monkeypatch):
    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(peers, "rank", broken)
    ranked, why = peers.rank_capped(10.0, "rcaeval_circa", None, None, GRAPH, "frontend", True)
    assert ranked == [] and why == "LinAlgError: Singular matrix"
