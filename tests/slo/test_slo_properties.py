"""Property tests: budgets are sums of counts, so they add up across groups and across time."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causalsre.slo import load_slos, request_outcomes
from causalsre.slo.evaluate import evaluate
from causalsre.slo.timeline import burn_rate_timeline
from causalsre.telemetry import migrate
from slo_rows import T0, add_requests, add_run
from slo_specs import latency_slo

PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])

requests_strategy = st.lists(
    st.fixed_dictionaries({
        "run_id": st.sampled_from(["r1", "r2"]),
        "tenant": st.sampled_from(["a", "b", "c", None]),
        "arrival_s": st.floats(0, 7000, allow_nan=False),
        "ttft_s": st.floats(0, 1, allow_nan=False),
        "status": st.sampled_from(["ok", "ok", "ok", "timeout", "rejected"]),
    }),
    min_size=1, max_size=60,
)


@pytest.fixture(scope="module")
def memory_db():
    con = duckdb.connect()
    migrate(con)
    add_run(con, "r1")
    add_run(con, "r2")
    yield con
    con.close()


@pytest.fixture(scope="module")
def slo(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "slo.yaml"
    path.write_text(latency_slo(target="0.95", duration="1d"))
    return load_slos(path)[0]


def load(con, rows):
    con.execute("DELETE FROM requests")
    add_requests(con, [{**row, "request_id": i} for i, row in enumerate(rows)])


@PROPERTY_SETTINGS
@given(rows=requests_strategy, group_by=st.sampled_from([["tenant"], ["run"], ["run", "tenant"]]))
def test_budget_consumed_is_the_event_weighted_sum_over_groups(memory_db, slo, rows, group_by):
    load(memory_db, rows)
    report = evaluate(memory_db, slo, group_by=group_by, at=T0 + timedelta(hours=2))
    groups = report["groups"]
    assert sum(g["events"] for g in groups) == report["events"] == len(rows)
    assert sum(g["bad_events"] for g in groups) == report["bad_events"]
    weighted = sum(g["budget_consumed"] * g["events"] for g in groups) / report["events"]
    assert weighted == pytest.approx(report["budget_consumed"], rel=1e-9, abs=1e-12)


@PROPERTY_SETTINGS
@given(rows=requests_strategy, cuts=st.lists(st.floats(1, 7000, allow_nan=False), max_size=5),
       resolution=st.sampled_from(["1s", "10s", "1m", "5m", "1h"]))
def test_splitting_the_period_into_windows_keeps_the_sli(memory_db, slo, rows, cuts, resolution):
    load(memory_db, rows)
    at = T0 + timedelta(hours=2)
    report = evaluate(memory_db, slo, at=at)
    edges = [T0 - timedelta(seconds=1)] + sorted(T0 + timedelta(seconds=c) for c in cuts) + [at + timedelta(seconds=1)]
    events = bad = 0
    for start, end in zip(edges, edges[1:], strict=False):
        outcomes = request_outcomes(memory_db, slo, start=start, end=end)
        events += len(outcomes)
        bad += int(outcomes["is_bad"].sum())
    assert (events, bad) == (report["events"], report["bad_events"])
    assert 1 - bad / events == pytest.approx(report["sli"])
    timeline = burn_rate_timeline(memory_db, slo, at=at, resolution=resolution)
    assert (timeline["events"].sum(), timeline["bad_events"].sum()) == (events, bad)
    assert timeline["budget_consumed"].iloc[-1] == pytest.approx(report["budget_consumed"])
