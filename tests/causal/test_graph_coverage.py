"""The graph covers every setting the harness records, and the postmortem refuses a graph that omits one that
changed between its windows, naming it."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
import yaml

from causalsre.causal import DEFAULT_GRAPH, build_analysis_table, load_graph
from causalsre.causal.graph import check_recorded_settings, graph_from_dict, recorded_settings
from causalsre.cli.main import main
from causalsre.errors import UserError
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window
from harness.settings import ALL_SETTINGS, EXCLUDED

REPO = Path(__file__).resolve().parents[2]
SLO = REPO / "models" / "slos" / "llm-serving.yaml"


def test_every_setting_of_the_table_is_a_node_or_excluded_in_the_shipped_graph():
    graph = load_graph(DEFAULT_GRAPH)
    for setting in ALL_SETTINGS.values():
        if setting.graph is None:
            assert setting.name in graph.excluded, setting.name
        else:
            assert setting.graph in graph.nodes, setting.name
            assert graph.nodes[setting.graph].family == setting.family, setting.name
    assert set(graph.excluded) == set(EXCLUDED)


def test_the_new_knobs_have_their_edges():
    graph = load_graph(DEFAULT_GRAPH).to_networkx()
    expected = {("request_timeout_s", "is_bad"), ("max_queue_len", "is_bad"),
                ("max_queue_len", "queue_depth_at_arrival"), ("batching_mode", "tpot_s"), ("batching_mode", "ttft_s"),
                ("enable_chunked_prefill", "ttft_s"), ("enable_chunked_prefill", "tpot_s"),
                ("enable_chunked_prefill", "prefill_tokens_during_decode"), ("block_size", "kv_utilization_at_arrival")}
    assert expected <= set(graph.edges)
    for knob in ("request_timeout_s", "max_queue_len", "batching_mode", "enable_chunked_prefill", "block_size"):
        assert nx.has_path(graph, knob, "is_bad"), knob


def test_excluded_must_be_reasons_and_not_nodes():
    node = {"role": "knob", "family": "batching", "type": "discrete"}
    out = {"role": "outcome", "family": "outcome", "type": "binary"}
    base = {"nodes": {"k": node, "is_bad": out}, "edges": [["k", "is_bad"]]}
    assert graph_from_dict({**base, "excluded": {"seed": "chance"}}).excluded == {"seed": "chance"}
    with pytest.raises(UserError, match="both a node and excluded"):
        graph_from_dict({**base, "excluded": {"k": "why"}})
    with pytest.raises(UserError, match="must map setting names to reasons"):
        graph_from_dict({**base, "excluded": ["seed"]})


@pytest.fixture(scope="module")
def timeout_push(tmp_path_factory):
    """A real 4 s run of the tiny engine: at 2 s a config push cuts request_timeout_s from 30 s to 20 ms."""
    from tests.harness.conftest import tiny_config
    from harness.runner import run

    cfg = tiny_config(duration_s=4.0, phases=[{"name": "baseline", "start_s": 0, "end_s": 2.0},
                                              {"name": "incident", "start_s": 2.0, "end_s": 4.0}],
                      faults=[{"kind": "config_push", "at_s": 2.0, "knobs": {"request_timeout_s": 0.02}}],
                      # Fixed step costs (harness.engine.clock), so that requests outlive 20 ms however fast the
                      # engine or quiet the machine: on the wall clock a faster engine finished them in time.
                      clock={"mode": "modelled", "base_s": 0.004, "prefill_token_s": 0.0003,
                             "decode_seq_s": 0.0008, "kv_token_s": 0.000004})
    db = tmp_path_factory.mktemp("cov") / "push.duckdb"
    return db, run(cfg, db, seed=3)


def test_a_timeout_push_reaches_the_analysis_table_and_a_graph_without_it_is_refused(timeout_push, tmp_path,
                                                                                     capsys):
    db, run_id = timeout_push
    con = connect_readonly(db)
    try:
        recorded = {r[0] for r in con.execute("SELECT DISTINCT setting FROM run_settings").fetchall()}
        graph = load_graph(DEFAULT_GRAPH)
        # Everything the harness recorded is a node or excluded.
        assert all(name in graph.nodes or name in graph.excluded for name in recorded), recorded
        assert {"request_timeout_s", "max_queue_len", "batching_mode", "enable_chunked_prefill",
                "block_size"} <= recorded
        baseline = parse_window(f"phase:baseline@{run_id}", con)
        incident = parse_window(f"phase:incident@{run_id}", con)
        base = build_analysis_table(con, None, window=baseline, graph=graph)
        inc = build_analysis_table(con, None, window=incident, graph=graph)
        assert set(base["request_timeout_s"]) == {30.0} and set(inc["request_timeout_s"]) == {0.02}
        for column in ("max_queue_len", "batching_mode", "enable_chunked_prefill", "block_size"):
            assert column in base.columns and base[column].nunique() == 1
        assert inc["is_bad"].mean() > base["is_bad"].mean()  # the push made requests time out
        changed = {name for name, values in recorded_settings(con, baseline).items()
                   if values != recorded_settings(con, incident).get(name)}
        assert changed == {"request_timeout_s"}
        check_recorded_settings(con, graph, baseline, incident)  # the shipped graph covers it
    finally:
        con.close()
    raw = yaml.safe_load(DEFAULT_GRAPH.read_text())
    del raw["nodes"]["request_timeout_s"]
    raw["edges"] = [e for e in raw["edges"] if "request_timeout_s" not in (e["from"], e["to"])]
    lacking = tmp_path / "lacking.yaml"
    lacking.write_text(yaml.safe_dump(raw))
    argv = ["postmortem", "--db", str(db), "--slo", str(SLO), "--baseline", f"phase:baseline@{run_id}",
            "--incident", f"phase:incident@{run_id}", "--graph", str(lacking), "--pairs", "100"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "request_timeout_s (30 -> 0.02)" in err and "add it to the graph or to excluded" in err
    # Excluding it, with a reason, is the other way to accept the graph.
    raw["excluded"]["request_timeout_s"] = "timeouts are judged by the SLO, not attributed"
    lacking.write_text(yaml.safe_dump(raw))
    assert main([*argv, "--json"]) == 0
    assert "attributions" in json.loads(capsys.readouterr().out)
