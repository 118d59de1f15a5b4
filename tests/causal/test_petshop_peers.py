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
@pytest.mark.slow  # RCAEval's import and CIRCA's PC step take seconds each
def test_peer_ranks_the_shifted_root_first(name):
    why = peers.missing([name])
    if why:
        pytest.skip(f"{name}: {why[name]}")
    # distribution_change tests each mechanism for a change: with 3 abnormal rows nothing is significant and
    # its ranking is Shapley noise (it put db first on one seed of three), so it gets a sample it can test
    rows = 100 if name == "gcm_distribution_change" else 3
    normal, abnormal = _sample(300, 1), _sample(rows, 2, shift=8.0)
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


def _sparse_availability(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Availability-shaped data: services at 100 % but for a few rows, and two columns that dip in the same
    rows (a service and its mirror): the correlation matrix is singular, as in PetShop's availability data."""
    rng = np.random.default_rng(seed)
    normal = pd.DataFrame({c: np.full(300, 100.0) for c in ("db", "auth", "api", "frontend")})
    normal["auth"] += rng.normal(0, 0.5, 300)
    for row in (40, 170):  # the mirror pair: db and api dip together, by the same amount
        normal.loc[row, ["db", "api"]] = 99.0
    normal["frontend"] = normal["api"] + normal["auth"] - 100 + rng.normal(0, 0.2, 300)
    abnormal = normal.iloc[:3].copy().reset_index(drop=True)
    abnormal["db"] -= 6.0
    abnormal["api"] -= 6.0
    abnormal["frontend"] -= 6.0
    return normal, abnormal


def test_full_rank_drops_copies_and_files_them_under_their_twin():
    normal, abnormal = _sparse_availability(3)
    data = pd.concat([normal, abnormal], ignore_index=True)
    data["db2"] = 2 * data["db"] + 1  # an exact linear copy
    kept, twins = peers.full_rank(data)
    values = data[kept].to_numpy() - data[kept].to_numpy().mean(axis=0)
    assert np.linalg.matrix_rank(values) == len(kept)  # what is left has full rank
    assert twins == {"db": ["api", "db2"]}  # api dips with db in every row: a copy up to the frontend's noise
    assert set(kept) | {"api", "db2"} == set(data.columns)


@pytest.mark.parametrize("name", ["rcaeval_circa", "rcaeval_pc_randomwalk"])
def test_pc_based_peers_run_on_singular_availability_data(name):
    """Before full_rank, CIRCA's and PC-random-walk's PC step raised 'Data correlation matrix is singular' on
    such data (most real availability incidents), a failure counted as a miss."""
    if peers.missing([name]):
        pytest.skip(peers.missing([name])[name])
    normal, abnormal = _sparse_availability(3)
    ranked = peers.rank(name, normal, abnormal, GRAPH, "frontend", up_is_worse=False)
    assert "db" in ranked and "api" in ranked  # the dropped copy is ranked, right behind its twin
    assert ranked.index("api") == ranked.index("db") + 1 or ranked.index("db") == ranked.index("api") + 1


def test_least_squares_mechanism_matches_ordinary_least_squares():
    rng = np.random.default_rng(5)
    X = rng.normal(0, 1, (200, 3))
    y = X @ [1.5, -2.0, 0.25] + 4 + rng.normal(0, 0.1, 200)
    model = peers.least_squares()
    model.fit(X, y)
    from sklearn.linear_model import LinearRegression

    reference = LinearRegression().fit(X, y)
    np.testing.assert_allclose(model.predict(X).ravel(), reference.predict(X), rtol=1e-9, atol=1e-9)
    assert model.clone().coefficients is None  # a clone is unfitted, as gcm expects


def test_gcm_runs_without_worker_processes_and_restores_the_setting():
    """DoWhy's default n_jobs=-1 started joblib workers for every Shapley evaluation (27 of 28 s per real
    incident on this machine); the peer runs in-process and puts DoWhy's setting back."""
    from dowhy.gcm import config

    before = config.default_n_jobs
    normal, abnormal = _sample(200, 1), _sample(3, 2, shift=8.0)
    ranked = peers.rank("gcm_attribute_anomalies", normal, abnormal, GRAPH, "frontend")
    assert ranked[0] == "db" and config.default_n_jobs == before
