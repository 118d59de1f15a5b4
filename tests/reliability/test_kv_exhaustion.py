"""KV-cache exhaustion end to end through the harness: preemption and refusal, never a crash or lost request.

The run's KV cache (6 blocks of 16 tokens = 96 token slots) is far smaller than the load needs, some requests
need more than the whole cache, and a kv_shrink fault halves it mid-run. The telemetry must show the engine
preempting and recomputing, refusing requests that can never fit, and finishing every request exactly once.
"""

from __future__ import annotations

import duckdb
import pytest

from harness.runner import prepare, run
from tests.harness.conftest import MODELLED_CLOCK, tiny_config


@pytest.fixture(scope="module")
def exhausted(tmp_path_factory):
    cfg = tiny_config(
        duration_s=3.0, drain_timeout_s=6.0,
        engine={"num_kv_blocks": 6, "block_size": 16, "max_num_seqs": 6, "max_num_batched_tokens": 96,
                "chunk_size": 32},
        workload={"rate": 8.0, "prompt": {"dist": "uniform", "low": 8, "high": 90},
                  "output": {"dist": "fixed", "value": 24}},
        faults=[{"kind": "kv_shrink", "at_s": 1.5, "num_kv_blocks": 4}],
        # Preemption needs requests that overlap in the cache, and how many overlap at 8 requests/s is how slow
        # the engine is: on the modelled clock it is a constant of the test, not of the machine.
        clock=MODELLED_CLOCK)
    _, _, _, schedule = prepare(cfg, 0)
    db = tmp_path_factory.mktemp("kv") / "kv.duckdb"
    run_id = run(cfg, db, seed=0)
    con = duckdb.connect(str(db), read_only=True)
    yield con, run_id, schedule
    con.close()


def _one(con, sql, params=()):
    return con.execute(sql, list(params)).fetchone()


def test_the_run_completes_and_every_offered_request_ends_exactly_once(exhausted):
    con, run_id, schedule = exhausted
    assert _one(con, "SELECT status FROM runs WHERE run_id = ?", [run_id])[0] == "complete"
    total, distinct = _one(con, "SELECT count(*), count(DISTINCT request_id) FROM requests")
    assert total == distinct == len(schedule)
    terminal = _one(con, "SELECT count(*) FROM events WHERE event_type IN ('finished', 'rejected', 'timeout', "
                         "'aborted')")[0]
    errors = _one(con, "SELECT count(*) FROM requests WHERE status = 'error'")[0]
    assert terminal + errors >= total


def test_the_engine_preempts_and_recomputes_under_kv_pressure(exhausted):
    con, _, _ = exhausted
    step_preemptions = _one(con, "SELECT sum(num_preemptions) FROM steps")[0]
    request_preemptions = _one(con, "SELECT sum(num_preemptions) FROM requests")[0]
    preempted_events, in_steps = _one(con, "SELECT count(*), count(step_id) FROM events "
                                           "WHERE event_type = 'preempted'")
    assert step_preemptions > 0
    # Every preemption is recorded on its request and as an event; those inside a step (not the ones the
    # kv_shrink itself forces between steps) are counted by that step too.
    assert request_preemptions == preempted_events
    assert step_preemptions == in_steps
    # Preempted requests recover: some finish ok after being recomputed.
    assert _one(con, "SELECT count(*) FROM requests WHERE num_preemptions > 0 AND status = 'ok'")[0] > 0
    # The cache is never over-committed.
    assert _one(con, "SELECT count(*) FROM steps WHERE num_kv_blocks_used > num_kv_blocks_total")[0] == 0
    assert _one(con, "SELECT min(num_kv_blocks_total) FROM steps")[0] == 4


def test_requests_that_can_never_fit_are_refused_not_deadlocked(exhausted):
    con, _, _ = exhausted
    refused = _one(con, "SELECT count(*) FROM requests WHERE status = 'error' AND finish_reason = "
                        "'exceeds_kv_capacity'")[0]
    assert refused > 0
    # Nothing that fits was refused for capacity: a 4-block (64-token) cache holds 64 tokens.
    wrongly = _one(con, "SELECT count(*) FROM requests WHERE finish_reason = 'exceeds_kv_capacity' "
                        "AND prompt_tokens + target_output_tokens <= 64")[0]
    assert wrongly == 0


def test_recomputation_does_not_duplicate_tokens(exhausted):
    con, _, _ = exhausted
    bad = _one(con, """
        SELECT count(*) FROM requests r
        WHERE r.status = 'ok' AND r.output_tokens != (
            SELECT count(DISTINCT t.token_index) FROM tokens t WHERE t.run_id = r.run_id AND t.request_id = r.request_id)
    """)[0]
    duplicated = _one(con, "SELECT count(*) FROM (SELECT run_id, request_id, token_index FROM tokens "
                           "GROUP BY ALL HAVING count(*) > 1)")[0]
    assert bad == 0 and duplicated == 0
