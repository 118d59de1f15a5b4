"""`attribute`: data from a known linear SCM with one shifted mechanism must rank that node first."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalsre.causal.rootcause import rank_root_causes
from causalsre.cli.main import main

EDGES = [("db", "api"), ("cache", "api"), ("api", "frontend"), ("auth", "frontend"), ("dns", "auth")]


def _sample(n: int, seed: int, shifted: str | None = None, shift: float = 8.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    noise = {node: rng.normal(0, 1, n) for node in ("db", "cache", "api", "frontend", "auth", "dns")}
    if shifted:
        noise[shifted] = noise[shifted] + shift
    data = {"db": 10 + noise["db"], "cache": 5 + noise["cache"], "dns": 1 + noise["dns"]}
    data["api"] = 0.8 * data["db"] + 0.5 * data["cache"] + noise["api"]
    data["auth"] = 2.0 * data["dns"] + noise["auth"]
    data["frontend"] = 1.5 * data["api"] + 0.7 * data["auth"] + noise["frontend"]
    return pd.DataFrame(data)


@pytest.mark.parametrize("culprit", ["db", "cache", "api", "dns", "frontend"])
def test_shifted_mechanism_ranks_first(culprit):
    normal = _sample(500, seed=1)
    abnormal = _sample(3, seed=2, shifted=culprit)
    ranked = rank_root_causes(normal, abnormal, nx.DiGraph(EDGES), "frontend")
    assert ranked and ranked[0].node == culprit


def test_normal_data_is_nothing_anomalous():
    graph = nx.DiGraph(EDGES)
    quiet = [not rank_root_causes(_sample(500, 1), _sample(3, seed), graph, "frontend") for seed in range(10, 40)]
    assert np.mean(quiet) >= 0.9


def test_nodes_off_the_target_path_are_not_candidates():
    graph = nx.DiGraph(EDGES + [("api", "reports")])
    normal = _sample(500, 1).assign(reports=lambda d: d["api"] + np.random.default_rng(3).normal(0, 1, 500))
    abnormal = _sample(3, 2, shifted="api").assign(reports=100.0)
    ranked = rank_root_causes(normal, abnormal, graph, "frontend")
    assert "reports" not in [c.node for c in ranked]


def test_cli_json_and_errors(tmp_path, capsys):
    _sample(400, 1).to_csv(tmp_path / "normal.csv", index=False)
    _sample(3, 2, shifted="dns").to_parquet(tmp_path / "abnormal.parquet")
    pd.DataFrame(EDGES, columns=["cause", "effect"]).to_csv(tmp_path / "edges.csv", index=False)
    args = ["attribute", "--normal", str(tmp_path / "normal.csv"), "--abnormal", str(tmp_path / "abnormal.parquet"),
            "--graph", str(tmp_path / "edges.csv")]
    assert main(args + ["--target", "frontend", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["root_causes"][0]["node"] == "dns"
    scores = [c["score"] for c in out["root_causes"]]
    assert scores == sorted(scores, reverse=True)
    assert main(args + ["--target", "nope"]) == 2
    assert "not a node of the graph" in capsys.readouterr().err
    (tmp_path / "cyclic.csv").write_text("a,b\nb,a\n")
    args[args.index(str(tmp_path / "edges.csv"))] = str(tmp_path / "cyclic.csv")
    assert main(args + ["--target", "a"]) == 2
    assert "cycle" in capsys.readouterr().err


def test_petshop_one_incident_per_cell(petshop_dir):
    from causalsre.causal import petshop as ps

    for scenario in ps.SCENARIOS:
        graph = ps.causal_graph(petshop_dir / scenario)
        normal = ps.read_metrics(petshop_dir / scenario / "noissue" / "metrics.csv")
        cases = ps.incidents(petshop_dir / scenario)
        for metric in ps.METRICS:
            case = next(c for c in cases if c.metric == metric)
            abnormal = ps.abnormal_rows(ps.wide(case.metrics, metric, case.statistic), case.timestamp)
            ranked = rank_root_causes(ps.wide(normal, metric, case.statistic), abnormal, graph, case.target)
            assert ranked[0].node == case.root_cause, (scenario, case.name)
