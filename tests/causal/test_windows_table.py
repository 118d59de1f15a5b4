"""Windows parse and validate against the database; the analysis table recovers the known causal structure."""

from __future__ import annotations

import pytest

from causalsre.causal import build_analysis_table, load_graph
from causalsre.errors import UserError
from causalsre.windows import check_disjoint, parse_window


def test_phase_run_and_time_windows(readonly):
    baseline = parse_window("phase:baseline", readonly)
    incident = parse_window("phase:incident@synthetic", readonly)
    whole = parse_window("run:synthetic", readonly)
    first_minute = parse_window("2026-01-01T00:00:00Z/2026-01-01T00:01:00Z", readonly)
    assert baseline.count(readonly) + incident.count(readonly) == whole.count(readonly)
    assert 0 < first_minute.count(readonly) < baseline.count(readonly)
    check_disjoint(baseline, incident, readonly)
    with pytest.raises(UserError, match="overlap"):
        check_disjoint(baseline, whole, readonly)


@pytest.mark.parametrize("text,message", [
    ("phase:nope", "no such phase"),
    ("run:nope", "not in the database"),
    ("2026-01-01T01:00:00Z/2026-01-01T00:00:00Z", "ends before it starts"),
    ("2030-01-01T00:00:00Z/2030-01-02T00:00:00Z", "holds no requests"),
    ("yesterday", "not understood"),
    ("2026-13-01/2026-01-02", "not an ISO 8601 time"),
])
def test_bad_windows(readonly, text, message):
    with pytest.raises(UserError, match=message):
        parse_window(text, readonly)


def test_window_text_never_reaches_sql(readonly):
    with pytest.raises(UserError, match="no such phase"):
        parse_window("phase:x' OR '1'='1", readonly)


def test_table_has_a_row_per_request_and_the_nodes(readonly):
    graph = load_graph()
    window = parse_window("phase:incident", readonly)
    table = build_analysis_table(readonly, None, window=window, graph=graph)
    assert len(table) == window.count(readonly)
    assert list(table.columns[:4]) == ["run_id", "request_id", "phase", "arrival_ts"]
    for node in ("cpu_contention", "max_num_seqs", "arrival_rate", "queue_depth_at_arrival", "mean_batch_size",
                 "prefill_tokens_during_decode", "kv_utilization_at_arrival", "ttft_s", "tpot_s", "is_bad"):
        assert node in table.columns, node
    assert set(table["cpu_contention"]) == {3.0}  # the incident value, in effect at every arrival
    assert table["arrival_rate"].median() == pytest.approx(4.0, rel=0.25)


def test_mediators_follow_the_fault(make_db):
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(make_db(fault="max_num_seqs"))
    graph = load_graph()
    before = build_analysis_table(con, None, window=parse_window("phase:baseline", con), graph=graph)
    after = build_analysis_table(con, None, window=parse_window("phase:incident", con), graph=graph)
    assert after["queue_depth_at_arrival"].mean() > 2 * before["queue_depth_at_arrival"].mean()
    assert after["queue_s"].mean() > 2 * before["queue_s"].mean()
    assert set(after["max_num_seqs"]) == {6.0} and set(before["max_num_seqs"]) == {32.0}
