"""The graph spec loader rejects bad specs with clear errors and accepts the shipped one."""

from __future__ import annotations

import pytest
import yaml

from causalsre.causal import DEFAULT_GRAPH, graph_from_dict, load_graph
from causalsre.errors import UserError


def _spec(nodes: dict, edges: list) -> dict:
    return {"nodes": nodes, "edges": edges, "target": next(iter(nodes))}


KNOB = {"role": "knob", "family": "batching", "type": "discrete"}
STATE = {"role": "engine_state", "family": "batching", "type": "continuous"}
OUT = {"role": "outcome", "family": "outcome", "type": "binary"}


def test_shipped_graph_is_valid_and_reaches_the_target():
    graph = load_graph(DEFAULT_GRAPH)
    nx_graph = graph.to_networkx()
    import networkx as nx

    assert graph.target == "is_bad"
    roots = [n for n in nx_graph if nx_graph.in_degree(n) == 0]
    assert {graph.nodes[r].role for r in roots} <= {"knob", "hardware", "workload"}
    for root in roots:
        if root != "tenant":
            assert nx.has_path(nx_graph, root, "is_bad"), root
    assert {n.family for n in graph.nodes.values()} == {"batching", "hardware", "workload", "outcome"}


def test_cycle_is_named():
    raw = _spec({"a": STATE, "b": STATE}, [["a", "b"], ["b", "a"]])
    with pytest.raises(UserError, match="cycle: a -> b -> a|cycle: b -> a -> b"):
        graph_from_dict(raw)


def test_unknown_node_is_named():
    raw = _spec({"a": STATE}, [{"from": "a", "to": "ghost"}])
    with pytest.raises(UserError, match="unknown node 'ghost'"):
        graph_from_dict(raw)


def test_outcome_cannot_cause_a_knob():
    raw = _spec({"y": OUT, "k": KNOB}, [{"from": "y", "to": "k"}])
    with pytest.raises(UserError, match="outcome causing a knob"):
        graph_from_dict(raw)


@pytest.mark.parametrize("key,value", [("role", "wizard"), ("family", "magic"), ("type", "vector")])
def test_bad_node_attributes(key, value):
    raw = _spec({"a": {**STATE, key: value}}, [])
    with pytest.raises(UserError, match=f"has {key} '{value}'"):
        graph_from_dict(raw)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_graph(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed")
    with pytest.raises(UserError, match="not valid YAML"):
        load_graph(bad)


def test_restriction_keeps_ancestors_connected():
    raw = _spec({"k": KNOB, "m": STATE, "y": OUT}, [["k", "m"], ["m", "y"]])
    graph = graph_from_dict(raw).restricted_to({"k", "y"})
    assert [(e.cause, e.effect) for e in graph.edges] == [("k", "y")]


def test_roundtrip_through_yaml(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(_spec({"k": KNOB, "y": OUT}, [{"from": "k", "to": "y", "why": "because"}])))
    graph = load_graph(path)
    assert graph.to_networkx().edges["k", "y"]["why"] == "because"
