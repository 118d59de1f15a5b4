"""The telemetry writer against synthetic observer records: batching, status, stale runs."""

from __future__ import annotations

import time

import duckdb

from causalsre.telemetry import connect_writable
from harness.engine.observer import RequestRecord, StepRecord
from harness.writer import TelemetryWriter, effective_status, mark_stale_runs


def _runs_row():
    return {"kind": "harness", "name": "synthetic", "started_at": "2026-01-01 00:00:00", "seed": 1,
            "config_json": {"name": "synthetic"}, "hardware_json": {"host": "test"}}


def _feed(writer: TelemetryWriter, request_id: int, t0: int) -> None:
    writer.register_request(request_id, t0 - 1000)
    writer.on_event(request_id, "queued", t0, None)
    writer.on_step(StepRecord(request_id, t0, t0 + 10, 1, 9, 1, 8, 0, 0, 0, 1, 1, 16, 0))
    for i in range(3):
        writer.on_token(request_id, i, request_id, t0 + 10 + i)
    writer.on_request_done(RequestRecord(request_id, 8, 3, 3, t0, t0, t0 + 10, t0 + 12, t0 + 12, "ok", "length",
                                         0, tenant="a", priority=0))


def test_writer_flushes_in_the_background(tmp_path):
    con = connect_writable(tmp_path / "w.duckdb")
    writer = TelemetryWriter(con, "r1", flush_interval_s=0.2)
    writer.start(_runs_row())
    writer.record_setting("max_num_seqs", 0, 16.0)
    writer.record_setting("policy", 0, None, "fcfs")
    writer.record_fault(0, "step_delay", "hardware", "step_delay_s", 5, None, {"delay_s": 0.1})
    writer.record_phase("baseline", 0, 100)
    for rid in range(50):
        _feed(writer, rid, 1000 * rid)
    deadline = time.monotonic() + 5.0  # flushes every 0.2 s; the slack is for a busy machine
    reader = con.cursor()
    while time.monotonic() < deadline and reader.execute("SELECT count(*) FROM tokens").fetchone()[0] < 150:
        time.sleep(0.05)
    assert reader.execute("SELECT count(*) FROM tokens").fetchone()[0] == 150  # flushed without close()
    assert effective_status(con, "r1") == "running"
    writer.close("complete")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("requests", "tokens", "steps", "events", "run_settings", "faults", "phases")}
    assert counts == {"requests": 50, "tokens": 150, "steps": 50, "events": 50, "run_settings": 2, "faults": 1,
                      "phases": 1}
    row = con.execute("SELECT status, finished_at IS NOT NULL, config_json->>'name' FROM runs").fetchone()
    assert row == ("complete", True, "synthetic")
    ttft = con.execute("SELECT ttft_s FROM request_metrics WHERE request_id = 3").fetchone()[0]
    assert abs(ttft - 1010 / 1e9) < 1e-12  # measured from the scheduled arrival the runner registered
    assert con.execute("SELECT value_text FROM run_settings WHERE setting = 'policy'").fetchone()[0] == "fcfs"
    con.close()


def test_a_run_left_running_is_marked_incomplete_by_the_next_writer(tmp_path):
    path = tmp_path / "s.duckdb"
    con = connect_writable(path)
    con.execute("INSERT INTO runs (run_id, kind, started_at, status, config_json) "
                "VALUES ('dead', 'harness', now(), 'running', '{}')")
    assert effective_status(con, "dead") == "incomplete"  # no live writer owns it
    writer = TelemetryWriter(con, "alive", flush_interval_s=0.2)
    writer.start(_runs_row())
    statuses = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
    assert statuses == {"dead": "incomplete", "alive": "running"}
    assert mark_stale_runs(con) == 0  # the live run is not touched
    writer.close("complete")
    con.close()
    ro = duckdb.connect(str(path), read_only=True)
    assert dict(ro.execute("SELECT run_id, status FROM runs").fetchall()) == {"dead": "incomplete",
                                                                              "alive": "complete"}
    ro.close()


def test_a_second_run_under_the_same_id_is_a_user_error_and_keeps_the_first(tmp_path):
    import pytest

    from causalsre.errors import UserError

    con = connect_writable(tmp_path / "w.duckdb")
    first = TelemetryWriter(con, "r1", flush_interval_s=0.2)
    first.start(_runs_row())
    _feed(first, 1, 1000)
    first.close("complete")
    second = TelemetryWriter(con, "r1", flush_interval_s=0.2)
    with pytest.raises(UserError, match="already in the database"):
        second.start(_runs_row())
    assert con.execute("SELECT status FROM runs WHERE run_id = 'r1'").fetchone()[0] == "complete"
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == 1
    con.close()
