"""Round 3 in a notebook: the API's verbs given what a Jupyter user might pass (wrong types, None, numpy numbers,
NaN, pandas timestamps, frames with a repeated column, edges with an empty end). Each is a UserError naming the
argument, raised before any work, never an AttributeError/TypeError from deep inside; numpy integers and
datetimes are accepted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import causalsre as cs
from causalsre.errors import UserError
from causalsre.resources import DEMO_SUITE

WINDOWS = dict(baseline="phase:baseline", incident="phase:incident")


@pytest.fixture(scope="module")
def con():
    connection = cs.connect(DEMO_SUITE)
    yield connection
    connection.close()


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(where={"tenant": float("nan")}), "where['tenant'] holds nan"),
    (dict(where={3: "a"}), "where has the key 3"),
    (dict(where={"tenant": {"a": 1}}), "not a value to match"),
    (dict(group_by=None), "group_by must be a list of column names"),
    (dict(group_by=["tenant", 3]), "group_by holds 3"),
    (dict(alert_windows=3), "alert_windows must be a file path"),
    (dict(resolution=3), "resolution must be None or a non-empty string"),
    (dict(at=pd.NaT), "at is NaT"),
    (dict(at=3), "at must be None or a non-empty string"),
    (dict(run=["x"]), "run must be None or a non-empty string"),
    (dict(min_events=1.0), "min_events must be a whole number >= 1"),
])
def test_slo_report_names_the_bad_argument(kwargs, fragment, con):
    with pytest.raises(UserError) as caught:
        cs.slo_report(con, timeline=False, **kwargs)
    assert fragment in caught.value.problem


def test_slo_report_takes_numpy_integers_and_timestamps(con):
    at = pd.Timestamp("2030-01-01", tz="UTC")  # after every request: the whole history is in the window
    report = cs.slo_report(con, at=at, min_events=np.int64(1), group_by="tenant", timeline=False)
    assert report is not None


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(baseline=3, incident="phase:incident"), "baseline must be a non-empty string"),
    (dict(WINDOWS, incident=["x"]), "incident must be a non-empty string"),
    (dict(WINDOWS, incident=None), "incident must be a non-empty string"),
    (dict(WINDOWS, seed=-1), "seed must be a whole number in 0..4294967295"),
    (dict(WINDOWS, seed=2.5), "seed must be a whole number"),
    (dict(WINDOWS, seed="1"), "seed must be a whole number"),
    (dict(WINDOWS, seed=None), "seed must be a whole number"),
    (dict(WINDOWS, graph=3), "graph must be a file path"),
    (dict(WINDOWS, run=3), "run must be None or a non-empty string"),
    (dict(WINDOWS, slo_name=3), "slo_name must be None or a non-empty string"),
    (dict(WINDOWS, pairs=True), "pairs must be a whole number >= 100"),
    (dict(WINDOWS, verify_top=np.int64(9)), "verify_top must be a whole number in 1..6"),
])
def test_postmortem_names_the_bad_argument(kwargs, fragment, con):
    with pytest.raises(UserError) as caught:
        cs.postmortem(con, **kwargs)
    assert fragment in caught.value.problem


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(window=3), "window must be a non-empty string"),
    (dict(seed="x"), "seed must be a whole number"),
    (dict(set={"max_num_seqs": None}), "set['max_num_seqs'] = None is not knob -> one value"),
    (dict(set={3: 1}), "set[3] = 1 is not knob -> one value"),
    (dict(set={"max_num_seqs": [16]}), "is not knob -> one value"),
    (dict(method=None), "unknown method None"),
    (dict(latency=3), "latency must be None or a non-empty string"),
    (dict(priors=3), "priors must be a file path"),
])
def test_whatif_names_the_bad_argument(kwargs, fragment, con):
    call = dict(window="phase:incident", set={"max_num_seqs": 16}) | kwargs
    with pytest.raises(UserError) as caught:
        cs.whatif(con, **call)
    assert fragment in caught.value.problem


def _tables():
    rng = np.random.default_rng(7)
    normal = pd.DataFrame({"load": rng.normal(size=60), "latency": rng.normal(size=60)})
    normal["latency"] += 2 * normal["load"]
    abnormal = normal.head(5).assign(load=8.0, latency=16.0)  # load caused it: the right answer
    return normal, abnormal


@pytest.mark.parametrize("graph,fragment", [
    ([None], "graph edge 1 is None"),
    ([("load", "latency"), "ab"], "graph edge 2 is 'ab'"),
    (pd.DataFrame({"cause": ["load", None], "effect": ["latency", "latency"]}), "graph edge 2 has an empty end"),
    ([("load", "")], "graph edge 1 has an empty end"),
    ({"load": "latency"}, "graph must be edges, not dict"),
])
def test_attribute_refuses_edges_with_no_end(graph, fragment):
    normal, abnormal = _tables()
    with pytest.raises(UserError) as caught:
        cs.attribute(normal, abnormal, graph=graph, target="latency")
    assert fragment in caught.value.problem


def test_attribute_refuses_a_repeated_column():
    normal, abnormal = _tables()
    doubled = pd.concat([normal, normal[["load"]]], axis=1)  # before: a numpy broadcast ValueError
    with pytest.raises(UserError, match="the normal data has the column.s. load more than once"):
        cs.attribute(doubled, abnormal, graph=[("load", "latency")], target="latency")


def test_attribute_takes_numpy_integers_and_an_edge_frame():
    normal, abnormal = _tables()
    edges = pd.DataFrame({"cause": ["load"], "effect": ["latency"]})
    result = cs.attribute(normal, abnormal, graph=edges, target="latency", top=np.int64(1))
    assert [c["node"] for c in result["root_causes"]] == ["load"]


def test_a_where_value_of_the_wrong_type_is_one_line(con):
    with pytest.raises(UserError, match="a where value does not fit its column's type"):
        cs.slo_report(con, where={"tenant": 3}, timeline=False)  # before: duckdb.ConversionException
