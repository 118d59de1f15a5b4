"""The load mode decides the graph: in a closed loop the measured arrival rate is a mediator of the server's
speed and the clients' number (causalsre/causal/load_mode.py); in an open loop it stays a workload root."""

from __future__ import annotations

import networkx as nx
import pandas as pd

from causalsre.causal import DEFAULT_GRAPH, load_graph
from causalsre.causal.load_mode import closed_loop_graph, is_cause
from causalsre.causal.server_changes import closed_loop
from causalsre.telemetry import connect_writable


def test_a_closed_loop_makes_the_arrival_rate_a_mediator_of_the_server_and_the_clients():
    graph = load_graph(DEFAULT_GRAPH)
    closed = closed_loop_graph(graph)
    assert is_cause(graph, "arrival_rate") and not is_cause(closed, "arrival_rate")
    assert closed.nodes["arrival_rate"].role == "engine_state" and graph.nodes["arrival_rate"].role == "workload"
    parents = set(closed.parents("arrival_rate"))
    assert {"max_concurrency", "max_num_seqs", "num_kv_blocks", "cpu_contention", "recent_output_tokens"} <= parents
    assert set(graph.parents("arrival_rate")) == {"offered_rate", "burstiness", "max_concurrency"}
    # more seats answer sooner (+1: more sends a second); busy processes slow it (-1); more clients, more sends
    assert (closed.sign("max_num_seqs", "arrival_rate"), closed.sign("cpu_contention", "arrival_rate"),
            closed.sign("max_concurrency", "arrival_rate")) == (1, -1, 1)
    assert nx.is_directed_acyclic_graph(closed.to_networkx())
    assert closed_loop_graph(closed) is closed  # once is enough
    # the rest of the graph is untouched
    assert {n: s.role for n, s in closed.nodes.items() if n != "arrival_rate"} == \
        {n: s.role for n, s in graph.nodes.items() if n != "arrival_rate"}
    assert set((e.cause, e.effect) for e in graph.edges) < set((e.cause, e.effect) for e in closed.edges)
    added = {(e.cause, e.effect) for e in closed.edges} - {(e.cause, e.effect) for e in graph.edges}
    assert all(effect == "arrival_rate" for _, effect in added)


def test_a_harness_closed_workload_and_a_closed_loop_import_are_both_closed_loops(tmp_path):
    con = connect_writable(str(tmp_path / "t.duckdb"))
    try:
        for run_id, process, config in (("open", "poisson", "{}"), ("closed", "closed", "{}"),
                                        ("bench", "import", '{"closed_loop": {"max_concurrency": 4}}')):
            con.execute("INSERT INTO runs (run_id, kind, name, started_at, status, arrival_process, config_json) "
                        "VALUES (?, 'harness', ?, now(), 'complete', ?, ?)", [run_id, run_id, process, config])
        table = lambda run: pd.DataFrame({"run_id": [run]})  # noqa: E731
        assert not closed_loop(con, table("open"), table("open"))
        assert closed_loop(con, table("open"), table("closed")) and closed_loop(con, table("bench"), table("bench"))
    finally:
        con.close()
