"""The good-event SQL and per-request outcomes over a real telemetry database."""

from __future__ import annotations

import pandas as pd
import pytest

from causalsre.errors import UserError
from causalsre.slo import good_event_sql, load_slos, request_outcomes
from slo_rows import T0
from slo_specs import LATENCY_SLO


@pytest.fixture
def latency_slo(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text(LATENCY_SLO)
    return load_slos(path)[0]


ROWS = [
    {"request_id": 0, "arrival_s": 1.0, "ttft_s": 0.2, "tpot_s": 0.01},               # good
    {"request_id": 1, "arrival_s": 2.0, "ttft_s": 0.7, "tpot_s": 0.01},               # slow first token
    {"request_id": 2, "arrival_s": 3.0, "ttft_s": 0.2, "tpot_s": 0.08},               # slow decode
    {"request_id": 3, "arrival_s": 4.0, "ttft_s": 0.2, "tpot_s": 0.01, "status": "rejected"},
    {"request_id": 4, "arrival_s": 5.0, "ttft_s": 0.2, "tpot_s": 0.01, "status": "timeout"},
    {"request_id": 5, "arrival_s": 6.0, "ttft_s": 0.5, "tpot_s": 0.05},               # exactly at both limits
    {"request_id": 6, "arrival_s": 7.0, "ttft_s": 0.3, "tpot_s": 0.9, "output_tokens": 1},  # no TPOT
    {"request_id": 7, "arrival_s": 8.0, "ttft_s": 0.2, "tpot_s": 0.01, "status": "error", "tenant": "b"},
]


def test_good_event_sql_binds_every_value(latency_slo):
    sql, params = good_event_sql(latency_slo)
    assert params == [0.5, 0.05]
    assert "0.5" not in sql and sql.count("?") == 2


def test_outcomes_mark_slow_and_failed_requests_bad(make_db, open_db, latency_slo):
    con = open_db(make_db(ROWS))
    frame = request_outcomes(con, latency_slo)
    assert list(frame.columns) == ["run_id", "request_id", "arrival_ts", "phase", "is_good", "is_bad"]
    assert frame.set_index("request_id")["is_good"].to_dict() == {
        0: True, 1: False, 2: False, 3: False, 4: False, 5: True, 6: True, 7: False,
    }
    assert (frame["is_bad"] == ~frame["is_good"]).all()
    # arrival_ts is the run's wall-clock t0 plus the scheduled arrival offset
    assert frame["arrival_ts"].iloc[0] == pd.Timestamp(T0) + pd.Timedelta(seconds=1)


def test_failed_requests_are_bad_even_with_no_conditions(make_db, open_db, latency_slo):
    con = open_db(make_db(ROWS))
    no_conditions = latency_slo.model_copy(update={"conditions": ()})
    frame = request_outcomes(con, no_conditions)
    assert set(frame.loc[frame["is_bad"], "request_id"]) == {3, 4, 7}


def test_structured_filter_selects_rows_and_refuses_unknown_columns(make_db, open_db, latency_slo):
    con = open_db(make_db(ROWS))
    assert list(request_outcomes(con, latency_slo, where={"tenant": "b"})["request_id"]) == [7]
    assert list(request_outcomes(con, latency_slo, where={"request_id": [1, 2]})["request_id"]) == [1, 2]
    with pytest.raises(UserError, match="unknown filter column"):
        request_outcomes(con, latency_slo, where={"tenant = 'a' OR 1=1 --": "x"})
    # A hostile value is only ever a bound parameter: it matches nothing and breaks nothing.
    assert request_outcomes(con, latency_slo, where={"tenant": "a' OR '1'='1"}).empty


def test_time_bounds_are_half_open(make_db, open_db, latency_slo):
    con = open_db(make_db(ROWS))
    frame = request_outcomes(con, latency_slo, start="2026-01-01T00:00:02", end="2026-01-01T00:00:04Z")
    assert list(frame["request_id"]) == [1, 2]


def test_outcomes_and_groups_carry_the_scenario_phase(make_db, open_db, latency_slo):
    from causalsre.slo.evaluate import evaluate
    from causalsre.telemetry import connect_writable

    path = make_db(ROWS)
    writer = connect_writable(path)
    writer.execute("INSERT INTO phases VALUES ('run-1', 'baseline', 0, 4500000000), ('run-1', 'incident', 4500000000, 99000000000)")
    writer.close()
    con = open_db(path)
    phases = request_outcomes(con, latency_slo).set_index("request_id")["phase"]
    assert phases[3] == "baseline" and phases[4] == "incident"
    groups = {g["group"]["phase"]: g for g in evaluate(con, latency_slo, group_by=["phase"])["groups"]}
    assert (groups["baseline"]["events"], groups["baseline"]["bad_events"]) == (4, 3)
    assert (groups["incident"]["events"], groups["incident"]["bad_events"]) == (4, 2)


def test_filter_values_are_checked_against_the_column_type_before_binding(make_db, open_db, latency_slo):
    import numpy as np

    from causalsre.slo import where_sql
    from causalsre.slo.columns import database_columns

    con = open_db(make_db(ROWS))
    columns = database_columns(con)
    # The same filter through every layer: a number for a text column is refused with a fix, not a
    # DuckDB conversion error from inside the query.
    for bad in ({"tenant": 3}, {"tenant": [3, "a"]}, {"priority": "0"}, {"priority": 0.5}, {"priority": True},
                {"priority": float("nan")}, {"priority": 2**70}, {"is_ok": 1}, {"arrival_ts": 5}):
        with pytest.raises(UserError) as caught:
            where_sql(bad, columns)
        assert caught.value.fix
        with pytest.raises(UserError):
            request_outcomes(con, latency_slo, where=bad)
    # Values of the right kind are bound (numpy integers and whole floats as Python ints)
    sql, params = where_sql({"tenant": ["b"], "priority": np.int64(0), "is_ok": False}, columns)
    assert sql.count("?") == 3 and params == ["b", 0, False] and type(params[1]) is int
    assert list(request_outcomes(con, latency_slo, where={"tenant": "b", "priority": 0.0})["request_id"]) == [7]
    assert len(request_outcomes(con, latency_slo, where={"arrival_ts": str(T0 + pd.Timedelta(seconds=1))})) == 1
