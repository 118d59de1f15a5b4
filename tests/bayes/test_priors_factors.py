import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causalsre.bayes.encoding import FactorEncoding, aggregate_cells
from causalsre.bayes.factors import adjustment_factors, graph_view
from causalsre.bayes.priors import load_priors
from causalsre.errors import UserError


def test_shipped_priors_load_and_hash_is_stable():
    a, b = load_priors(), load_priors()
    assert a.model.version >= 1
    assert a.config_hash(["x"], "slo") == b.config_hash(["x"], "slo")
    assert a.config_hash(["x"], "slo") != a.config_hash(["y"], "slo")


@pytest.mark.parametrize("text, where", [
    ("[model]\nversion = 1\n[intercept]\nmu = 0\nsigmaa = 1\n", "intercept.sigmaa"),
    ("[model]\nversion = 1\n[coefficients]\nsigma = -1\n", "coefficients.sigma"),
    ("[intercept]\nmu = 0\n", "model"),
])
def test_bad_priors_are_user_errors(tmp_path, text, where):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=where.replace(".", r"\.")):
        load_priors(path)


def test_factors_are_the_non_descendants_of_knobs(serving):
    table, graph = serving
    factors = adjustment_factors(graph_view(graph), table)
    assert set(factors) == {"max_num_seqs", "policy", "arrival_rate", "cpu_contention", "prompt_tokens"}


def test_graph_spec_like_objects_are_accepted():
    class Node:
        def __init__(self, role, actionable):
            self.role, self.actionable = role, actionable

    class Spec:
        nodes = {"k": Node("knob", True), "m": Node("mediator", False), "w": Node("workload", False)}

        def to_networkx(self):
            return nx.DiGraph([("k", "m"), ("w", "m"), ("m", "is_bad")])

    table = pd.DataFrame({"k": [1, 2], "m": [0.1, 0.2], "w": [3, 4], "is_bad": [True, False]})
    view = graph_view(Spec())
    assert view.actionable == ["k"]
    assert adjustment_factors(view, table) == ["k", "w"]


def test_no_factor_in_table_is_a_user_error():
    graph = nx.DiGraph([("k", "is_bad")])
    with pytest.raises(UserError, match="no graph factor"):
        adjustment_factors(graph_view(graph), pd.DataFrame({"other": [1], "is_bad": [True]}))


def test_encoding_logs_wide_ranges_and_cells_keep_totals(serving):
    table, graph = serving
    factors = adjustment_factors(graph_view(graph), table)
    enc = FactorEncoding.fit(table, factors, ["max_num_seqs", "policy"])
    knob = enc.code("max_num_seqs")
    assert knob.log and knob.quadratic and knob.observed == [4.0, 8.0, 16.0, 32.0]
    assert enc.code("prompt_tokens").bin_edges is not None       # continuous: binned for cells
    assert not enc.code("cpu_contention").log                    # has zeros: no log
    cells = aggregate_cells(enc, table)
    assert cells["n"].sum() == len(table) and cells["bad"].sum() == table["is_bad"].sum()
    assert len(cells) < len(table) / 3
    X, names, owners = enc.design(cells)
    assert names[:2] == ["max_num_seqs", "max_num_seqs^2"] and "policy[sjf]" in names
    assert X.shape == (len(cells), len(names)) and np.isfinite(X).all()
    assert FactorEncoding.from_json(enc.to_json()) == enc
