"""The telemetry contract: migrations produce exactly the documented tables and columns."""

from __future__ import annotations

import duckdb
import pytest

from causalsre.errors import UserError
from causalsre.telemetry import SCHEMA_VERSION, connect_readonly, connect_writable, migrate, schema_version

# The supported interface, written out literally: a change to the schema must change this test too.
EXPECTED_COLUMNS = {
    "schema_migrations": ["version", "name", "applied_at"],
    "runs": ["run_id", "kind", "name", "started_at", "finished_at", "status", "seed", "model_preset", "device",
             "dtype", "num_threads", "max_num_seqs", "max_num_batched_tokens", "enable_chunked_prefill",
             "chunk_size", "policy", "batching_mode", "num_kv_blocks", "block_size", "max_queue_len",
             "request_timeout_s", "arrival_process", "arrival_rate", "burstiness", "hardware_json", "config_json"],
    "requests": ["run_id", "request_id", "tenant", "priority", "prompt_tokens", "target_output_tokens",
                 "output_tokens", "scheduled_arrival_ns", "enqueue_ns", "first_scheduled_ns", "first_token_ns",
                 "last_token_ns", "finish_ns", "status", "finish_reason", "num_preemptions", "attributes"],
    "tokens": ["run_id", "request_id", "token_index", "step_id", "emitted_ns"],
    "steps": ["run_id", "step_id", "start_ns", "end_ns", "schedule_ns", "forward_ns", "num_prefill_seqs",
              "num_prefill_tokens", "num_decode_seqs", "num_decode_tokens", "num_waiting", "num_running",
              "num_kv_blocks_used", "num_kv_blocks_total", "num_preemptions"],
    "events": ["run_id", "request_id", "event_type", "ts_ns", "step_id"],
    "faults": ["run_id", "fault_id", "kind", "family", "factor", "start_ns", "end_ns", "params"],
    "phases": ["run_id", "name", "start_ns", "end_ns"],
    "run_settings": ["run_id", "setting", "start_ns", "value", "value_text"],
    "request_metrics": ["run_id", "request_id", "tenant", "priority", "phase", "prompt_tokens",
                        "target_output_tokens", "output_tokens", "status", "finish_reason", "num_preemptions",
                        "attributes", "arrival_ns", "arrival_ts", "queue_s", "ttft_s", "tpot_s", "e2e_s", "is_ok"],
    "inter_token_latency": ["run_id", "request_id", "token_index", "step_id", "itl_s"],
    "settings_timeline": ["run_id", "setting", "start_ns", "end_ns", "value", "value_text"],
    "metric_samples": ["run_id", "ts_ns", "metric", "labels_json", "value", "source"],
    "operator_events": ["run_id", "ts_ns", "key", "value", "kind", "source"],
    "control_actions": ["run_id", "ts_ns", "action", "tier", "reason", "short_burn", "long_burn",
                        "budget_remaining", "params_before", "params_after"],
}
EXPECTED_COLUMNS["step_metrics"] = EXPECTED_COLUMNS["steps"] + [
    "duration_s", "batch_size", "num_batched_tokens", "kv_utilization"]


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return found


def test_blank_database_gets_exactly_the_documented_columns(tmp_path):
    con = connect_writable(tmp_path / "t.duckdb")
    assert schema_version(con) == SCHEMA_VERSION == 4
    assert _columns(con) == EXPECTED_COLUMNS
    assert con.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall() == [
        (1, "core_tables"), (2, "phases_and_views"), (3, "metric_samples_and_operator_events"),
        (4, "control_actions")]


def test_older_database_migrates_forward_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, target=1)
    con.execute("INSERT INTO runs (run_id, kind, started_at, status, config_json) "
                "VALUES ('r1', 'harness', TIMESTAMP '2026-01-01 00:00:00', 'complete', '{}')")
    con.execute("INSERT INTO requests (run_id, request_id, prompt_tokens, output_tokens, enqueue_ns, first_token_ns,"
                " last_token_ns, finish_ns, status) VALUES ('r1', 0, 10, 3, 0, 100000000, 300000000, 300000000, 'ok')")
    con.close()
    with pytest.raises(UserError, match="older"):
        connect_readonly(path)
    con = connect_writable(path)
    assert schema_version(con) == SCHEMA_VERSION
    ttft, tpot = con.execute("SELECT ttft_s, tpot_s FROM request_metrics").fetchone()
    assert ttft == pytest.approx(0.1) and tpot == pytest.approx(0.1)
    con.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    con = connect_writable(path)
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    con.close()
    with pytest.raises(UserError, match="newer"):
        connect_readonly(path)
    with pytest.raises(UserError, match="newer"):
        connect_writable(path)


def test_readonly_connection_cannot_write(tmp_path):
    path = tmp_path / "t.duckdb"
    connect_writable(path).close()
    con = connect_readonly(path)
    with pytest.raises(duckdb.Error):
        con.execute("DELETE FROM runs")
    con.close()


def test_views_define_ttft_tpot_and_keep_failed_requests(tmp_path):
    con = connect_writable(tmp_path / "t.duckdb")
    con.execute("INSERT INTO runs (run_id, kind, started_at, status, config_json) "
                "VALUES ('r', 'harness', TIMESTAMP '2026-01-01 00:00:00', 'complete', '{}')")
    # scheduled 1.0 s, enqueued late at 1.2 s, scheduled 1.5 s, first token 2.0 s, last 4.0 s with 5 tokens.
    con.execute("INSERT INTO requests VALUES ('r', 1, 't', 0, 10, 5, 5, 1000000000, 1200000000, 1500000000, "
                "2000000000, 4000000000, 4000000000, 'ok', 'length', 0, NULL)")
    con.execute("INSERT INTO requests VALUES ('r', 2, 't', 0, 10, 5, 0, 3000000000, 3000000000, NULL, "
                "NULL, NULL, 3000000000, 'rejected', 'queue_full', 0, NULL)")
    con.execute("INSERT INTO phases VALUES ('r', 'baseline', 0, 2500000000), ('r', 'incident', 2500000000, 9e9)")
    rows = con.execute("SELECT request_id, phase, queue_s, ttft_s, tpot_s, e2e_s, is_ok, arrival_ts "
                       "FROM request_metrics ORDER BY request_id").fetchall()
    first, second = rows
    assert first[1] == "baseline" and first[2] == pytest.approx(0.5) and first[3] == pytest.approx(1.0)
    assert first[4] == pytest.approx(0.5) and first[5] == pytest.approx(3.0) and first[6] is True
    assert str(first[7]) == "2026-01-01 00:00:01"
    assert second[1] == "incident" and second[3] is None and second[4] is None and second[6] is False
    con.execute("INSERT INTO tokens VALUES ('r', 1, 0, 1, 2000000000), ('r', 1, 1, 2, 2300000000), "
                "('r', 1, 2, 3, 3000000000)")
    gaps = con.execute("SELECT itl_s FROM inter_token_latency ORDER BY token_index").fetchall()
    assert [g[0] for g in gaps] == [pytest.approx(0.3), pytest.approx(0.7)]
