"""Property-based fuzzing of every parser: whatever a user writes, nothing but UserError escapes.

Each parser gets mutated valid documents (one to three edits of a shipped, valid one) and raw text. The
examples are derandomized (a fixed seed derived from each test), so a failure reproduces exactly.
"""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import yaml
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causalsre.errors import UserError
from causalsre.slo import load_slos
from causalsre.slo.windows import alert_windows_from_document
from tests.badinput.bad_files import BAD_FILES, GOOD_SLO
from tests.badinput.mutations import mutated

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REPO = Path(__file__).resolve().parents[2]
SLO_DOC = yaml.safe_load(GOOD_SLO.read_text())
AW_DOC = yaml.safe_load(BAD_FILES["aw_percent_zero.yaml"].replace("errorBudgetPercent: 0,",
                                                                  "errorBudgetPercent: 2,"))
GRAPH_DOC = yaml.safe_load((REPO / "models" / "serving.yaml").read_text())
RUN_DOC = tomllib.loads((REPO / "harness" / "configs" / "bursty_onoff.toml").read_text())


def _only_user_errors(call, *args, **kwargs):
    """Call; a UserError is a fine answer, any other exception fails the test (with its traceback)."""
    try:
        return call(*args, **kwargs)
    except UserError as exc:
        assert exc.problem and "\n" not in exc.one_line()
        return None


def _yaml_file(folder: str, doc) -> Path:
    path = Path(folder) / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True) if not isinstance(doc, str) else doc)
    return path


@FUZZ
@given(doc=mutated(SLO_DOC))
def test_slo_spec_mutations_raise_only_user_errors(doc):
    with tempfile.TemporaryDirectory() as folder:
        _only_user_errors(load_slos, _yaml_file(folder, doc))


@FUZZ
@given(text=st.text(max_size=200))
def test_slo_spec_text_raises_only_user_errors(text):
    with tempfile.TemporaryDirectory() as folder:
        _only_user_errors(load_slos, _yaml_file(folder, text))


@FUZZ
@given(doc=mutated(AW_DOC))
def test_sloth_alert_windows_mutations_raise_only_user_errors(doc):
    if isinstance(doc, dict):
        _only_user_errors(alert_windows_from_document, doc, "fuzz.yaml")


@FUZZ
@given(doc=mutated(GRAPH_DOC))
def test_graph_spec_mutations_raise_only_user_errors(doc):
    from causalsre.causal import graph_from_dict

    _only_user_errors(graph_from_dict, doc, "fuzz")


def test_an_edge_naming_a_list_is_a_user_error():
    from causalsre.causal import graph_from_dict

    doc = {"nodes": {"a": {"role": "knob", "family": "batching", "type": "discrete"}},
           "edges": [{"from": ["a"], "to": "a"}]}
    with pytest.raises(UserError):
        graph_from_dict(doc, "fuzz")


names = st.sampled_from(["a", "b", "c", "is_bad", "ghost"])
node = st.fixed_dictionaries({"role": st.sampled_from(["knob", "workload", "engine_state", "outcome", "x"]),
                              "family": st.sampled_from(["batching", "workload", "outcome", "x"]),
                              "type": st.sampled_from(["continuous", "binary", "x"])})


@FUZZ
@given(nodes=st.dictionaries(names, node, max_size=4),
       edges=st.lists(st.one_of(st.tuples(names, names).map(list), st.tuples(names, names, st.text(max_size=3))
                                .map(list), st.fixed_dictionaries({"from": names, "to": names})), max_size=6))
def test_generated_graphs_raise_only_user_errors_and_valid_ones_are_acyclic(nodes, edges):
    import networkx as nx

    from causalsre.causal import graph_from_dict

    spec = _only_user_errors(graph_from_dict, {"nodes": nodes, "edges": edges}, "fuzz")
    if spec is not None:  # whatever the loader accepts is a DAG whose edges name declared nodes
        graph = spec.to_networkx()
        assert nx.is_directed_acyclic_graph(graph) and set(graph.nodes) <= set(nodes)


@FUZZ
@given(text=st.text(max_size=200))
def test_graph_spec_text_raises_only_user_errors(text):
    from causalsre.causal import load_graph

    with tempfile.TemporaryDirectory() as folder:
        _only_user_errors(load_graph, _yaml_file(folder, text))


@FUZZ
@given(doc=mutated(RUN_DOC))
def test_harness_run_config_mutations_raise_only_user_errors(doc):
    from harness.config import parse_run_config

    if isinstance(doc, dict):
        _only_user_errors(parse_run_config, doc, source="fuzz")


def _toml_loader(name: str):
    from harness.config import load_run_config
    from harness.sweep import load_sweep

    return {"run": load_run_config, "sweep": load_sweep}[name]


@pytest.mark.parametrize("kind", ["run", "sweep"])
@FUZZ
@given(text=st.text(max_size=200))
def test_harness_toml_text_raises_only_user_errors(kind, text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{kind}.toml"
        path.write_text(text)
        _only_user_errors(_toml_loader(kind), path)


@FUZZ
@given(overrides=st.dictionaries(st.sampled_from(["engine.max_num_seqs", "workload.rate", "duration_s",
                                                  "engine", "engine.nope", "workload.prompt.dist", "",
                                                  "phases", "faults.0"]), mutated(0, max_edits=1), max_size=3))
def test_harness_overrides_raise_only_user_errors(overrides):
    from harness.config import parse_run_config

    _only_user_errors(parse_run_config(RUN_DOC).with_overrides, overrides)


WINDOW_TEXT = st.one_of(
    st.text(max_size=40),
    st.builds(lambda kind, body: f"{kind}:{body}", st.sampled_from(["run", "phase"]),
              st.one_of(st.text(max_size=12), st.sampled_from(["r1", "incident", "incident@r1", "@", "@r1",
                                                               "incident@nope"]))),
    st.builds(lambda a, b: f"{a}/{b}", st.one_of(st.datetimes().map(str), st.text(max_size=12),
                                                   st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:05+05:00"])),
              st.one_of(st.datetimes().map(lambda d: d.isoformat()), st.text(max_size=12),
                        st.sampled_from(["2026-01-01T00:00:10Z", "2026-01-01", "24:00"]))))


@pytest.fixture(scope="module")
def window_db():
    """An in-memory database with one imported run and a phase, for parse_window to validate against."""
    import duckdb

    from causalsre.telemetry import migrate
    from causalsre.telemetry.imports import import_requests_file
    from tests.conftest import FIXTURES

    con = duckdb.connect(":memory:")
    migrate(con)
    import_requests_file(con, FIXTURES / "requests_small.csv")
    run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
    con.execute("INSERT INTO phases VALUES (?, 'incident', 0, 2000000000)", [run_id])
    yield con
    con.close()


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(text=WINDOW_TEXT, allow_empty=st.booleans())
def test_window_syntax_raises_only_user_errors(window_db, text, allow_empty):
    from causalsre.windows import parse_window

    window = _only_user_errors(parse_window, text, window_db, allow_empty=allow_empty)
    if window is not None:  # an accepted window is a bound-parameter filter that runs, non-empty unless allowed
        assert window.count(window_db) > 0 or allow_empty
        assert text.strip() not in window.where()[0] or not text.strip()


CSV_CELL = st.one_of(st.sampled_from(["a", "b", "c", "cause", "effect", "", " ", '"', "1", "nan"]),
                     st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=5))


@FUZZ
@given(rows=st.lists(st.lists(CSV_CELL, min_size=0, max_size=4), max_size=5))
def test_attribute_edge_lists_raise_only_user_errors(rows):
    import networkx as nx

    from causalsre.causal.rootcause import read_edges

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "edges.csv"
        path.write_text("\n".join(",".join(row) for row in rows))
        graph = _only_user_errors(read_edges, path)
        if graph is not None:  # an accepted edge list is a DAG
            assert nx.is_directed_acyclic_graph(graph)


SWEEP_DOC = tomllib.loads((REPO / "harness" / "configs" / "sweep_small.toml").read_text())


@FUZZ
@given(doc=mutated(SWEEP_DOC))
def test_sweep_spec_mutations_raise_only_user_errors(doc):
    from harness.sweep import design_configs, parse_sweep

    result = _only_user_errors(parse_sweep, doc, source="fuzz", base_dir=REPO / "harness" / "configs")
    if result is not None:    # a sweep that validates must also expand into run configs
        _only_user_errors(design_configs, *result)
