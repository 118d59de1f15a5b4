"""graph check finds a missing edge in data from a known SCM; learn respects the tier rule; show draws."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.causal import graph_from_dict
from causalsre.causal.structure import check_graph, learn_graph
from causalsre.cli.main import main

KNOB = {"role": "knob", "family": "batching", "type": "continuous"}
STATE = {"role": "engine_state", "family": "batching", "type": "continuous"}
OUT = {"role": "outcome", "family": "outcome", "type": "continuous"}


def _data(seed=0, n=2000):
    rng = np.random.default_rng(seed)
    k = rng.normal(size=n)
    w = rng.normal(size=n)
    m = k + rng.normal(size=n)
    y = m + 0.8 * w + rng.normal(size=n)  # w -> y exists in the data
    return pd.DataFrame({"k": k, "w": w, "m": m, "y": y})


def _spec(edges):
    return graph_from_dict({"nodes": {"k": KNOB, "w": KNOB, "m": STATE, "y": OUT}, "edges": edges, "target": "y"})


def test_check_names_the_missing_edge_and_passes_the_true_graph():
    data = _data()
    wrong = check_graph(data, _spec([["k", "m"], ["m", "y"]]))
    assert {(t["x"], t["y"]) for t in wrong["failed"]} & {("y", "w"), ("w", "y")}
    right = check_graph(data, _spec([["k", "m"], ["m", "y"], ["w", "y"]]))
    assert right["failed"] == [] and right["tests"] >= 3


def test_learn_never_points_into_a_knob():
    result = learn_graph(_data(), _spec([["k", "m"], ["m", "y"]]), method="hillclimb")
    learned = set(map(tuple, result["in_both"])) | set(map(tuple, result["only_in_data"]))
    assert ("w", "y") in learned
    assert not {(a, b) for a, b in learned if b in ("k", "w") and a in ("m", "y")}


def test_cli_check_and_show(make_db, tmp_path, capsys):
    db = make_db(fault="cpu_contention", phase_s=30.0)
    # The synthetic workload's arrival rate and lengths move together, which the default graph does not say:
    # a check that finds a contradicted independence exits 1 (tests/cli/test_exit_codes.py has one that passes).
    assert main(["graph", "check", "--db", str(db), "--window", "phase:incident"]) == 1
    assert "implied independences tested" in capsys.readouterr().out
    out = tmp_path / "graph.png"
    assert main(["graph", "show", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
