"""Replaying a recorded window: the same requests at the same offsets, with the intervention applied."""

from __future__ import annotations

import duckdb

from harness.replay import replay_window, window_config
from harness.runner import run


def test_replay_of_a_phase_reproduces_its_requests_under_an_intervention(tmp_path, tiny):
    cfg = tiny(duration_s=3.0, phases=[{"name": "before", "start_s": 0, "end_s": 1.5},
                                       {"name": "after", "start_s": 1.5, "end_s": 3.0}],
               workload={"tenants": [{"name": "a"}, {"name": "b", "priority": 1}]},
               faults=[{"kind": "step_delay", "at_s": 1.0, "delay_s": 0.01}])
    src = tmp_path / "src.duckdb"
    run_id = run(cfg, src, seed=5)
    replay_cfg = window_config(src, run_id, "after")
    assert replay_cfg.seed == 5 and replay_cfg.duration_s == 1.5
    assert [(f.kind, f.at_s) for f in replay_cfg.faults] == [("step_delay", 0.0)]  # in force at the start
    out = tmp_path / "out.duckdb"
    new_id = replay_window(src, run_id, "after", {"engine.max_num_seqs": 1}, out)

    con = duckdb.connect(str(src), read_only=True)
    p0 = con.execute("SELECT start_ns FROM phases WHERE name = 'after'").fetchone()[0]
    original = con.execute(
        "SELECT request_id, scheduled_arrival_ns - ?, prompt_tokens, target_output_tokens, tenant, priority "
        "FROM requests WHERE scheduled_arrival_ns >= ? ORDER BY request_id", [p0, p0]).fetchall()
    con.close()
    con = duckdb.connect(str(out), read_only=True)
    t0 = con.execute("SELECT min(start_ns) FROM phases").fetchone()[0]
    replayed = con.execute(
        "SELECT request_id, scheduled_arrival_ns - ?, prompt_tokens, target_output_tokens, tenant, priority "
        "FROM requests ORDER BY request_id", [t0]).fetchall()
    assert len(replayed) == len(original) > 0
    for a, b in zip(original, replayed):
        assert a[0] == b[0] and a[2:] == b[2:]
        assert abs(a[1] - b[1]) <= 1000  # same offset within the window (ns rounding)
    assert con.execute("SELECT max(batch_size) FROM step_metrics").fetchone()[0] == 1
    assert con.execute("SELECT max_num_seqs, seed, name FROM runs").fetchone() == (1, 5, f"replay-t-after")
    assert con.execute("SELECT run_id FROM runs").fetchone()[0] == new_id
    con.close()
