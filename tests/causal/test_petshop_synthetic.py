"""Semi-synthetic PetShop incidents: the generator puts the culprit where it says (on a tiny hand-made dataset
with a known call graph, no ../shared needed), and ``attribute`` names culprits other than PetSearch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from causalsre.causal import petshop_eval as pe
from causalsre.causal import petshop_synthetic as ps
from causalsre.causal.petshop import SCENARIOS, read_metrics
from causalsre.causal.rootcause import rank_root_causes
from causalsre.cli.main import main

# caller -> callee: PetSite calls api and cdn; api calls db and cache; db is the deepest service.
CALLS = [("PetSite", "api"), ("PetSite", "cdn"), ("api", "db"), ("api", "cache")]
NODES = ["PetSite", "api", "cdn", "db", "cache"]
REQUESTS = {"PetSite": 500, "api": 500, "cdn": 250, "db": 500, "cache": 1000}  # calls per 5 minutes


def _write_dataset(root, seed=0, rows=400):
    """A PetShop-shaped dataset: latency adds up the call chain, availability drops with a callee's."""
    rng = np.random.default_rng(seed)
    for scenario in SCENARIOS:
        folder = root / scenario
        (folder / "noissue").mkdir(parents=True)
        adjacency = pd.DataFrame(0.0, index=NODES, columns=NODES)
        for caller, callee in CALLS:
            adjacency.loc[caller, callee] = 1.0
        adjacency.to_csv(folder / "graph.csv")
        own = {n: 0.02 + rng.normal(0, 0.001, rows) for n in NODES}
        latency = {"db": own["db"], "cache": own["cache"], "cdn": own["cdn"]}
        latency["api"] = own["api"] + latency["db"] + 2 * latency["cache"]
        latency["PetSite"] = own["PetSite"] + latency["api"] + 0.5 * latency["cdn"]
        columns, data = [], []
        for node in NODES:
            for metric, values in (("latency", latency[node]), ("availability", np.full(rows, 100.0)),
                                   ("requests", rng.poisson(REQUESTS[node], rows).astype(float))):
                columns.append((node, metric, "Average" if metric != "requests" else "Sum"))
                data.append(values)
        index = pd.Index(1_700_000_000 + 300.0 * np.arange(rows), name="unix_timestamp")
        frame = pd.DataFrame(np.column_stack(data), index=index,
                             columns=pd.MultiIndex.from_tuples(columns, names=["microservice", "metric", "statistic"]))
        frame.to_csv(folder / "noissue" / "metrics.csv")
    return root


@pytest.fixture
def tiny(tmp_path):
    return _write_dataset(tmp_path / "tiny")


def test_generator_puts_the_culprit_where_it_says(tiny, tmp_path):
    out = tmp_path / "synthetic"
    summary = ps.generate(tiny, out, count=6, seed=11)
    normal = read_metrics(tiny / "low_traffic" / "noissue" / "metrics.csv")
    culprits = set()
    for issue in sorted((out / "low_traffic" / "train").glob("issue_*")):
        meta = json.loads((issue / "target.json").read_text())
        culprit, metric = meta["root_cause"]["node"], meta["target"]["metric"]
        culprits.add(culprit)
        rows = read_metrics(issue / "metrics.csv")
        base = normal.loc[rows.index]
        changed = {n for n in NODES if not np.allclose(rows[(n, metric, "Average")], base[(n, metric, "Average")])}
        # Exactly the culprit and its callers moved (PetSite reaches every service); nothing below it.
        callers = {"db": {"api", "PetSite"}, "cache": {"api", "PetSite"}, "api": {"PetSite"}, "cdn": {"PetSite"}}
        assert changed == {culprit} | callers[culprit], (issue.name, culprit, changed)
        assert set(meta["metadata"]["synthetic"]["changed"]) == changed
        # Before the onset nothing moved; after it the culprit moved the bad way.
        culprit_change = rows[(culprit, metric, "Average")].to_numpy() - base[(culprit, metric, "Average")].to_numpy()
        assert culprit_change[0] == 0
        assert (culprit_change[2:] > 0).all() if metric == "latency" else (culprit_change[2:] < 0).all()
        # The row timestamps are normal rows the generator did not keep for fitting (held out).
        fitted = read_metrics(out / "low_traffic" / "noissue" / "metrics.csv")
        assert not set(rows.index) & set(fitted.index)
    assert culprits <= {"api", "cdn", "db", "cache"} and len(culprits) >= 2
    assert summary["count_per_cell"] == 6 and len(summary["scenarios"]["low_traffic"]["incidents"]) == 12


def test_generation_is_seeded(tiny, tmp_path):
    first = ps.generate(tiny, tmp_path / "a", count=3, seed=5)
    second = ps.generate(tiny, tmp_path / "b", count=3, seed=5)
    other = ps.generate(tiny, tmp_path / "c", count=3, seed=6)
    assert first["scenarios"] == second["scenarios"] != other["scenarios"]


def test_attribute_finds_the_generated_culprits(tiny, tmp_path):
    """The shipped defaults name the injected service first, whichever it is (db is two calls deep)."""
    out = tmp_path / "synthetic"
    ps.generate(tiny, out, count=8, seed=3)
    cases = pe.load_cases(out)[0]
    right = []
    for case in cases:
        ranked = rank_root_causes(case.normal, case.abnormal(600), case.graph, case.incident.target)
        right.append(bool(ranked) and ranked[0].node == case.incident.root_cause)
    truths = {c.incident.root_cause for c in cases}
    assert len(cases) == 32 and {"db", "api"} <= truths
    assert all(right), right  # the settings before the path and unexplained-share rules missed one of them


def test_eval_petshop_synthetic_cli(tiny, capsys):
    """eval petshop --synthetic on a dataset without real incidents: the generated ones are the pool."""
    assert main(["eval", "petshop", "--data", str(tiny), "--synthetic", "4", "--seed", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_real"] == 0 and out["n_synthetic"] == 16
    assert {c["source"] for c in out["cells"]} == {"synthetic"}
    assert all(0 <= c["frozen_top1"] <= c["frozen_top3"] <= 1 for c in out["cells"])
    assert main(["eval", "petshop", "--data", str(tiny), "--synthetic", "501"]) == 2


def test_attribute_names_other_culprits_on_petshop(petshop_dir, tmp_path):
    """On incidents generated from the real PetShop normal data, the culprits are not PetSearch and the
    shipped defaults still name most of them first (the development seed's figure is in docs/evaluation.md)."""
    out = tmp_path / "synthetic"
    ps.generate(petshop_dir, out, count=3, seed=1)
    cases = [c for c in pe.load_cases(out)[0] if c.incident.root_cause != "PetSearch_AWS::ECS::Fargate"]
    hits = []
    for case in cases:
        ranked = rank_root_causes(case.normal, case.abnormal(600), case.graph, case.incident.target)
        hits.append(bool(ranked) and ranked[0].node == case.incident.root_cause)
    assert len(cases) >= 8 and np.mean(hits) >= 0.75
