"""Real runs of the tiny engine: every table is written, faults change the engine and are recorded."""

from __future__ import annotations

import duckdb
import pytest

from harness.faults import ENGINE_KNOBS
from harness.runner import prepare, run

# Step costs of a modelled clock (seconds): a tiny-model step on this class of machine, order of magnitude.
STEP_COSTS = {"base_s": 0.004, "prefill_token_s": 0.0003, "decode_seq_s": 0.0008, "kv_token_s": 0.000004}

ALL_FACTORS = {"max_num_seqs", "max_num_batched_tokens", "chunk_size", "enable_chunked_prefill", "policy",
               "batching_mode", "num_kv_blocks", "num_threads", "cpu_contention", "step_delay_s", "dtype",
               "device", "arrival_rate", "burstiness", "prompt_tokens", "output_tokens", "tenant"}


def _q(con, sql, *params):
    return con.execute(sql, list(params)).fetchall()


def test_a_run_with_a_config_push_and_a_step_delay_records_everything(tmp_path, tiny):
    cfg = tiny(phases=[{"name": "baseline", "start_s": 0, "end_s": 1.0}, {"name": "incident", "start_s": 1.0,
                                                                            "end_s": 3.0}],
               faults=[{"kind": "config_push", "at_s": 1.0, "knobs": {"max_num_seqs": 2}},
                       {"kind": "step_delay", "at_s": 1.5, "end_s": 2.5, "delay_s": 0.05}])
    db = tmp_path / "r.duckdb"
    run_id = run(cfg, db, seed=7)
    _, _, _, schedule = prepare(cfg, 7)
    con = duckdb.connect(str(db), read_only=True)
    status, seed, rate, name = _q(con, "SELECT status, seed, arrival_rate, name FROM runs")[0]
    assert (status, seed, rate, name) == ("complete", 7, 6.0, "t")
    # The machine's speed on a fixed mini-workload is recorded with the run (a replay is compared against it).
    decode_ms, prefill_ms = _q(con, "SELECT (hardware_json->'speed_probe'->>'decode_step_ms')::DOUBLE, "
                                    "(hardware_json->'speed_probe'->>'prefill_step_ms')::DOUBLE FROM runs")[0]
    assert 0 < decode_ms < prefill_ms
    assert _q(con, "SELECT count(*) FROM requests")[0][0] == len(schedule)
    # Every token is recorded once; requests that finished got all 6 (a slow machine may abort a few at drain).
    ok, ok_tokens = _q(con, "SELECT count(*), sum(output_tokens) FROM requests WHERE status = 'ok'")[0]
    assert ok >= 0.5 * len(schedule) and ok_tokens == 6 * ok
    assert _q(con, "SELECT sum(output_tokens) FROM requests")[0][0] == _q(con, "SELECT count(*) FROM tokens")[0][0]
    assert {r[0] for r in _q(con, "SELECT status FROM requests")} <= {"ok", "aborted", "timeout"}
    # Every factor has a value at t0; the push and the delay show up as changes.
    at_t0 = {r[0] for r in _q(con, "SELECT setting FROM run_settings WHERE start_ns = 0")}
    assert ALL_FACTORS | set(ENGINE_KNOBS) <= at_t0
    push_ns = _q(con, "SELECT start_ns FROM run_settings WHERE setting = 'max_num_seqs' AND value = 2")[0][0]
    assert 1.0e9 <= push_ns < 1.5e9
    delays = _q(con, "SELECT value, start_ns FROM run_settings WHERE setting = 'step_delay_s' ORDER BY start_ns")
    assert [d[0] for d in delays] == [0.0, 0.05, 0.0]
    delay_on_ns, delay_off_ns = delays[1][1], delays[2][1]
    assert 1.5e9 <= delay_on_ns < delay_off_ns and delay_off_ns >= 2.5e9
    faults = _q(con, "SELECT kind, family, factor FROM faults ORDER BY fault_id")
    assert faults == [("config_push", "batching", "max_num_seqs"), ("step_delay", "hardware", "step_delay_s")]
    # The engine obeyed: at most 2 sequences per step after the push, slow steps during the delay.
    assert _q(con, "SELECT max(batch_size) FROM step_metrics WHERE start_ns > ?", push_ns)[0][0] <= 2
    slow = _q(con, "SELECT count(*), min(duration_s) FROM step_metrics WHERE start_ns > ? AND end_ns < ?",
              delay_on_ns, delay_off_ns)[0]
    assert slow[0] > 0 and slow[1] >= 0.05
    phases = dict(_q(con, "SELECT phase, count(*) FROM request_metrics GROUP BY 1"))
    assert set(phases) == {"baseline", "incident"}
    arrivals = [r[0] for r in _q(con, "SELECT scheduled_arrival_ns FROM requests ORDER BY request_id")]
    offset = arrivals[0] - schedule[0].arrival_ns
    assert 0 <= offset < 0.5e9  # the schedule's t0 on the engine clock
    assert arrivals == [s.arrival_ns + offset for s in schedule]
    con.close()
    assert run_id.startswith("t-s7-")


def test_closed_loop_keeps_concurrency_clients_in_flight(tmp_path, tiny):
    cfg = tiny(duration_s=2.0, workload={"arrival": "closed", "rate": None, "concurrency": 2})
    db = tmp_path / "c.duckdb"
    run(cfg, db)
    con = duckdb.connect(str(db), read_only=True)
    assert _q(con, "SELECT max(num_running + num_waiting) FROM steps")[0][0] <= 2
    assert _q(con, "SELECT count(*) FROM requests WHERE status = 'ok'")[0][0] >= 4
    assert _q(con, "SELECT arrival_rate FROM runs")[0][0] is None
    con.close()


def test_overload_is_bounded_by_the_queue_and_rejections_are_recorded(tmp_path, tiny):
    # On the modelled clock (fixed step costs, harness.engine.clock) the engine's speed is a constant of the test:
    # on the wall clock a faster engine (or a quieter machine) served more and rejected fewer than half.
    cfg = tiny(duration_s=2.0, drain_timeout_s=2.0,
               engine={"max_num_seqs": 4, "max_queue_len": 8},
               workload={"rate": 400.0, "prompt": {"dist": "fixed", "value": 16}},
               clock={"mode": "modelled", **STEP_COSTS})
    _, _, _, schedule = prepare(cfg, 0)
    db = tmp_path / "o.duckdb"
    run(cfg, db)
    con = duckdb.connect(str(db), read_only=True)
    assert _q(con, "SELECT count(*) FROM requests")[0][0] == len(schedule)  # nothing offered is lost
    rejected = _q(con, "SELECT count(*) FROM requests WHERE status = 'rejected' AND finish_reason = 'queue_full'")
    assert rejected[0][0] > 0.5 * len(schedule)
    assert _q(con, "SELECT count(*) FROM events WHERE event_type = 'rejected'")[0][0] == rejected[0][0]
    # The engine never holds more than the queue bound plus a full batch, however much is offered.
    assert _q(con, "SELECT max(num_waiting), max(num_running) FROM steps")[0] <= (8, 4)
    bad = _q(con, "SELECT count(*) FROM request_metrics WHERE NOT is_ok")[0][0]
    assert bad >= rejected[0][0]
    con.close()


@pytest.mark.parametrize("kind, fault, factor", [
    ("kv_shrink", {"num_kv_blocks": 16}, "num_kv_blocks"),
    ("fewer_threads", {"num_threads": 1}, "num_threads"),
])
def test_engine_faults_are_applied_and_recorded(tmp_path, tiny, kind, fault, factor):
    cfg = tiny(duration_s=1.5, engine={"num_threads": 2},
               faults=[{"kind": kind, "at_s": 0.5, **fault}])
    db = tmp_path / "f.duckdb"
    run(cfg, db)
    con = duckdb.connect(str(db), read_only=True)
    assert _q(con, "SELECT factor FROM faults")[0][0] == factor
    values = [r[0] for r in _q(con, "SELECT value FROM run_settings WHERE setting = ? ORDER BY start_ns", factor)]
    assert values[-1] == next(iter(fault.values())) and len(values) == 2
    if kind == "kv_shrink":  # every step after the recorded change ran with the shrunk cache
        changed_ns = _q(con, "SELECT max(start_ns) FROM run_settings WHERE setting = 'num_kv_blocks'")[0][0]
        assert changed_ns >= 0.5e9
        assert _q(con, "SELECT max(num_kv_blocks_total) FROM steps WHERE start_ns > ?", changed_ns)[0][0] == 16
    con.close()
